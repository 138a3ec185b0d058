"""Transactional reconfiguration: a configuration the registry refuses at start never takes
the last good one down (converge with files under tmp_path, the fake engine), and the status
says why, without secrets (registry_rejection)."""
import json
import os
from unittest import mock

import pytest

from charms.layer.registry_status import BLOCKED, Outcome
from charms.layer import registry_container, registry_http, registry_rejection, \
    registry_files, registry_juju
from charms.layer.registry_config import Facts
from tests.support.registry_testlib import (IMAGE_CMD, IMAGE_ID, TEMPLATES, UNIT, UNIT_ADDRESS,
                                            with_options)

REGION_PANIC = ('time="2026-12-06T02:00:00Z" level=info msg="redis not configured"\n'
                'panic: invalid region provided: nowhere-1\n\ngoroutine 1 [running]:\n'
                'main.main()\n')


def converge(config, proves_itself):
    return registry_files.converge(config, Facts('', 'secret', None, False), None, UNIT,
                                     (IMAGE_ID, IMAGE_CMD), [UNIT_ADDRESS], TEMPLATES,
                                     proves_itself)


def read(path):
    with open(path, 'rb') as stream:
        return stream.read()


@pytest.fixture
def good(fake_docker, host_dirs):
    """A registry serving basic auth (the last good configuration)."""
    config = with_options({'auth-basic-password': 'good-pw'})
    assert converge(config, lambda name: True) == 'started'
    files = {key: read(host_dirs[key]) for key in ('HOST_CONFIG', 'HOST_HTPASSWD', 'HOST_ENV')}
    fingerprint = fake_docker.containers['registry']['labels'][registry_container.FINGERPRINT_LABEL]
    return config, files, fingerprint


def refuse(fake_docker):
    def proves_itself(name):
        fake_docker.logs[name] = REGION_PANIC
        return False
    return proves_itself


BAD = {'auth-basic-password': 'new-pw', 'http-host': 'https://r.example.com/',
       'registry-http-proxy': 'http://proxy:3128'}


def test_a_refused_configuration_puts_the_old_files_and_container_back(
        good, fake_docker, host_dirs):
    config, files, fingerprint = good
    with pytest.raises(registry_container.Rejected) as rejected:
        converge(with_options(BAD), refuse(fake_docker))
    assert 'invalid region provided' in rejected.value.logs
    # The old container mounts these paths: it must find its own content again.
    for key, content in files.items():
        assert read(host_dirs[key]) == content, key
    container = fake_docker.containers['registry']
    assert container['running']
    assert container['labels'][registry_container.FINGERPRINT_LABEL] == fingerprint
    assert set(fake_docker.containers) == {'registry'}


def test_a_file_the_old_configuration_lacked_is_removed_again(fake_docker, host_dirs):
    converge(with_options(), lambda name: True)
    with pytest.raises(registry_container.Rejected):
        converge(with_options({'auth-basic-password': 'pw'}), refuse(fake_docker))
    assert not os.path.exists(host_dirs['HOST_HTPASSWD'])


def test_the_same_refused_configuration_is_not_retried(good, fake_docker, host_dirs):
    with pytest.raises(registry_container.Rejected):
        converge(with_options(BAD), refuse(fake_docker))
    record = host_dirs['HOST_DIR'] + '/rejected.json'
    assert os.stat(record).st_mode & 0o777 == 0o600
    calls = len(fake_docker.mutating_calls())
    for _ in range(3):  # later hooks, the password's bcrypt hash included, see the same
        with pytest.raises(registry_container.Rejected) as again:
            converge(with_options(BAD), refuse(fake_docker))
        assert 'invalid region provided' in again.value.logs
    assert len(fake_docker.mutating_calls()) == calls, 'retried a refused configuration'
    assert 'new-pw' not in read(record).decode()


def test_a_changed_configuration_is_tried_and_success_forgets_the_refusal(
        good, fake_docker, host_dirs):
    with pytest.raises(registry_container.Rejected):
        converge(with_options(BAD), refuse(fake_docker))
    fixed = with_options(BAD, **{'registry-http-proxy': ''})
    assert converge(fixed, lambda name: True) == 'recreated'
    assert not os.path.exists(host_dirs['HOST_DIR'] + '/rejected.json')
    # and the old good configuration is still "unchanged"-able after a refusal
    config, _, _ = good
    assert converge(config, lambda name: True) == 'recreated'


def test_a_failed_write_puts_the_old_files_back(good, fake_docker, host_dirs):
    config, files, fingerprint = good
    real_write = registry_files.write_file

    def disk_full(path, content, mode):
        if path == host_dirs['HOST_ENV']:
            raise OSError(28, 'No space left on device')
        return real_write(path, content, mode)
    with mock.patch.object(registry_files, 'write_file', side_effect=disk_full):
        with pytest.raises(OSError):
            converge(with_options(BAD), lambda name: True)
    for key, content in files.items():
        assert read(host_dirs[key]) == content, key
    assert fake_docker.containers['registry']['running']


# --- proves_itself ---------------------------------------------------------------------------

URL = 'http://127.0.0.1:5000'


def test_a_registry_that_answers_and_keeps_running_proves_itself(fake_docker):
    fake_docker.add_container('registry', True)
    with mock.patch.object(registry_http, 'probe', return_value=401), \
            mock.patch('time.sleep') as sleep:
        assert registry_files.proves_itself(URL, 'registry', timeout=1)
    sleep.assert_any_call(registry_files.STEADY_SECONDS)
    assert registry_files.STEADY_SECONDS >= 3


def test_a_registry_restarted_in_the_steady_window_does_not(fake_docker):
    fake_docker.add_container('registry', True)

    def restart(seconds):
        fake_docker.containers['registry']['starts'] += 1
    with mock.patch.object(registry_http, 'probe', return_value=200), \
            mock.patch('time.sleep', side_effect=restart):
        assert not registry_files.proves_itself(URL, 'registry', timeout=1)


def test_a_crashing_registry_is_given_up_at_once(fake_docker):
    fake_docker.add_container('registry', True)
    probes = []

    def crash(*args, **kwargs):
        probes.append(1)
        fake_docker.containers['registry']['restarting'] = True
        return None
    with mock.patch.object(registry_http, 'probe', side_effect=crash):
        assert not registry_files.proves_itself(URL, 'registry', timeout=30)
    assert len(probes) == 1


def test_another_service_answering_is_no_proof(fake_docker):
    fake_docker.add_container('registry', True)
    with mock.patch.object(registry_http, 'probe', return_value=None):
        assert not registry_files.proves_itself(URL, 'registry', timeout=0.2)


# --- the status line -----------------------------------------------------------------------

S3 = with_options({'storage-s3-bucket': 'b', 'storage-s3-region': 'nowhere-1',
                   'storage-s3-accesskey': 'AKIAEXAMPLE', 'storage-s3-secretkey': 'S3CRET/key'})


@pytest.mark.parametrize('logs,config,options,error', [
    (REGION_PANIC, S3, '(storage-s3-region)', 'invalid region provided: nowhere-1'),
    ('panic: unable to configure authorization (token): unable to parse token auth root '
     'certificate: x509: malformed certificate\n',
     with_options({'auth-token-root-certs': 'eA==', 'auth-token-realm': 'https://a/t'}),
     '(auth-token-root-certs, auth-token-realm)', 'unable to configure authorization'),
    ('time="x" level=fatal msg="could not add CA to pool"\n',
     with_options({'tls-client-ca-blob': 'eA==', 'tls-client-auth': True}),
     '(tls-client-ca-blob, tls-client-auth)', 'could not add CA to pool'),
    ('panic: Get "http://127.0.0.1:1/v2/?token=SECRETTOKEN": dial tcp 127.0.0.1:1: connect: '
     'connection refused\n', with_options({'cache-remoteurl': 'http://127.0.0.1:1'}),
     '(cache-remoteurl)', 'connection refused'),
])
def test_the_status_names_the_options_and_the_registry_error(logs, config, options, error):
    text = registry_rejection.message(logs, config)
    assert text.startswith('Registry refused the new configuration ' + options), text
    assert error in text
    assert text.endswith('the last good configuration still serves')
    assert 'SECRETTOKEN' not in text and 'goroutine' not in text


def test_secrets_are_removed_from_the_error():
    logs = ('time="x" level=fatal msg="s3: bad key AKIAEXAMPLE secret S3CRET/key for '
            'https://user:pw@s3.example.com/b?X-Amz-Signature=abc http.secret=shared"\n')
    text = registry_rejection.message(logs, S3, http_secret='shared')
    for secret in ('AKIAEXAMPLE', 'S3CRET/key', 'user:pw', 'abc', 'shared'):
        assert secret not in text, secret
    assert 'https://***@s3.example.com/b?***' in text


def test_a_long_error_is_cut_and_no_log_is_said():
    assert len(registry_rejection.message('panic: ' + 'x' * 5000, with_options())) < 300
    assert 'did not start (no log)' in registry_rejection.message('', with_options(), '', False)
    assert 'still serves' not in registry_rejection.message('', with_options(), '', False)


def test_configure_blocks_with_the_refusal(hookenv, fake_docker):
    fake_docker.images['registry:2'] = (IMAGE_ID, IMAGE_CMD)
    hookenv['config'].return_value = S3
    refused = registry_container.Rejected(REGION_PANIC, True)
    with mock.patch.object(registry_files, 'converge', side_effect=refused), \
            mock.patch.object(registry_files, 'read_file', return_value=None):
        outcome = registry_juju.configure(mock.Mock())
    assert outcome == Outcome(BLOCKED, registry_rejection.message(
        REGION_PANIC, S3, 'secret'))


def test_configure_blocks_on_a_full_disk(hookenv, fake_docker):
    fake_docker.images['registry:2'] = (IMAGE_ID, IMAGE_CMD)
    full = OSError(28, 'No space left on device')
    with mock.patch.object(registry_files, 'converge', side_effect=full), \
            mock.patch.object(registry_files, 'read_file', return_value=None):
        outcome = registry_juju.configure(mock.Mock())
    assert outcome == Outcome(
        BLOCKED, 'Cannot write the registry configuration: No space left on device')


def test_the_refusal_record_is_json(good, fake_docker, host_dirs):
    with pytest.raises(registry_container.Rejected):
        converge(with_options(BAD), refuse(fake_docker))
    record = json.loads(read(host_dirs['HOST_DIR'] + '/rejected.json'))
    assert set(record) == {'fingerprint', 'logs', 'previous_serves', 'htpasswd'}


# --- one registry unit per machine ------------------------------------------------------------

def test_a_second_application_on_the_machine_blocks(hookenv, fake_docker):
    # Every path is per machine (/etc/docker/registry, /srv/registry): a second registry
    # would overwrite the first one's config, htpasswd and TLS files.
    fake_docker.images['registry:2'] = (IMAGE_ID, IMAGE_CMD)
    fake_docker.add_container('registry', True, {registry_container.UNIT_LABEL: 'other-app/3'})
    fake_docker.add_container('old', False, {registry_container.UNIT_LABEL: 'gone-app/1'})
    with mock.patch.object(registry_files, 'converge') as converge:
        outcome = registry_juju.configure(mock.Mock())
    assert outcome.state == BLOCKED
    assert outcome.message.startswith('Another registry unit (other-app/3) runs on this machine')
    converge.assert_not_called()


def test_our_own_container_is_no_other_unit(fake_docker):
    fake_docker.add_container('registry', True, {registry_container.UNIT_LABEL: UNIT})
    assert registry_container.other_units(UNIT) == []


# --- registry-name changes --------------------------------------------------------------------

def test_naming_another_workloads_container_touches_nothing(good, fake_docker, host_dirs):
    config, files, fingerprint = good
    fake_docker.add_container('foreign', True, {})
    calls = len(fake_docker.mutating_calls())
    with pytest.raises(registry_container.NotOurs):
        converge(dict(config, **{'registry-name': 'foreign'}), lambda name: True)
    assert len(fake_docker.mutating_calls()) == calls
    assert fake_docker.containers['registry']['running']
    assert fake_docker.containers['foreign']['running']
    for key, content in files.items():
        assert read(host_dirs[key]) == content, key


def test_a_refused_rename_keeps_the_old_configuration_serving(good, fake_docker, host_dirs):
    config, files, fingerprint = good
    with pytest.raises(registry_container.Rejected) as rejected:
        converge(dict(config, **{'registry-name': 'registry-two', 'http-host': 'http://x/'}),
                 refuse(fake_docker))
    assert rejected.value.previous_serves
    # the last good container serves on, under the new name
    assert set(fake_docker.containers) == {'registry-two'}
    container = fake_docker.containers['registry-two']
    assert container['running']
    assert container['labels'][registry_container.FINGERPRINT_LABEL] == fingerprint
    for key, content in files.items():
        assert read(host_dirs[key]) == content, key
