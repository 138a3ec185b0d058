"""htpasswd content: bcrypt, verifiable, and stable while user and password are unchanged."""
from passlib.apache import HtpasswdFile
from passlib.hash import bcrypt

from charms.layer import registry_paths
from charms.layer.registry_auth import htpasswd_content
from tests.support.registry_testlib import run, with_options


def test_entry_is_bcrypt_and_verifies():
    content = htpasswd_content('admin', 'pw')
    user, _, hashed = content.decode().strip().partition(':')
    assert user == 'admin'
    assert hashed.startswith('$2')
    assert bcrypt.verify('pw', hashed)
    assert not bcrypt.verify('other', hashed)
    assert content.count(b'\n') == 1


def test_production_cost_is_at_least_10(production_bcrypt):
    assert production_bcrypt >= 10
    content = htpasswd_content('admin', 'pw')
    assert content.startswith('admin:$2y${:02d}$'.format(production_bcrypt).encode()) or \
        content.startswith('admin:$2b${:02d}$'.format(production_bcrypt).encode())
    assert HtpasswdFile.from_string(content).check_password('admin', 'pw')


def test_kept_byte_identical_when_user_and_password_unchanged():
    first = htpasswd_content('admin', 'pw')
    assert htpasswd_content('admin', 'pw', first) is first


def test_fresh_hash_differs_without_existing():
    # bcrypt salts: which is why the existing entry must be kept
    assert htpasswd_content('admin', 'pw') != htpasswd_content('admin', 'pw')


def test_replaced_when_password_changes():
    first = htpasswd_content('admin', 'pw')
    second = htpasswd_content('admin', 'pw2', first)
    assert second != first
    entry = HtpasswdFile.from_string(second)
    assert entry.check_password('admin', 'pw2')
    assert not entry.check_password('admin', 'pw')


def test_replaced_when_user_changes():
    first = htpasswd_content('admin', 'pw')
    second = htpasswd_content('alice', 'pw', first)
    assert HtpasswdFile.from_string(second).users() == ['alice']


def test_extra_users_are_dropped():
    crowded = HtpasswdFile(default_scheme='bcrypt')
    crowded.set_password('admin', 'pw')
    crowded.set_password('mallory', 'x')
    result = htpasswd_content('admin', 'pw', crowded.to_string())
    assert HtpasswdFile.from_string(result).users() == ['admin']


def test_unreadable_existing_content_is_replaced():
    result = htpasswd_content('admin', 'pw', b'garbage without colon\n')
    assert HtpasswdFile.from_string(result).check_password('admin', 'pw')


def test_desired_files_keep_the_existing_entry_so_the_fingerprint_is_stable():
    config = with_options({'auth-basic-password': 'pw'})
    first = run(config)
    existing = first.files[registry_paths.HOST_HTPASSWD].content
    again = run(config, existing_htpasswd=existing)
    assert again.files[registry_paths.HOST_HTPASSWD].content == existing
    assert again.spec.fingerprint == first.spec.fingerprint


def test_desired_files_replace_the_entry_on_password_change():
    first = run(with_options({'auth-basic-password': 'pw'}))
    existing = first.files[registry_paths.HOST_HTPASSWD].content
    changed = run(with_options({'auth-basic-password': 'pw2'}), existing_htpasswd=existing)
    assert changed.files[registry_paths.HOST_HTPASSWD].content != existing
    assert changed.spec.fingerprint != first.spec.fingerprint
