"""TLS material: precedence of the sources, checks on real certificates, status and requests.

Certificates come from a real throw-away CA (tests/support/ca.py, the openssl CLI).
"""
import datetime
from unittest import mock

import pytest

from charms.layer.registry_status import ACTIVE, BLOCKED, WAITING, Outcome
from charms.layer import registry_files, registry_tls, registry_juju
from charms.layer import registry_paths, registry_validation
from charms.layer.registry_validation import ConfigProblem
from tests.support.registry_testlib import b64, with_options
from tests.support.ca import TestCA

NOW = datetime.datetime(2026, 11, 28, 12, 0, 0)


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    base = tmp_path_factory.mktemp('pki')
    ca = TestCA(base / 'ca', days=30)
    other_ca = TestCA(base / 'other-ca', cn='Another CA')
    server = ca.server_cert('registry', ['192.0.2.10', 'registry.example.com'])
    other = other_ca.server_cert('other', ['192.0.2.10'])
    return {'ca': ca.pem.encode(), 'other_ca': other_ca.pem.encode(),
            'cert': server.cert.read_bytes(), 'key': server.key.read_bytes(),
            'other_key': other.key.read_bytes()}


def disk(files):
    return files.get


# --- where material comes from ----------------------------------------------------------------

RELATION = {registry_paths.RELATION_CERT: b'relation cert', registry_paths.RELATION_KEY: b'rk',
            registry_paths.RELATION_CA: b'relation ca'}
PATHS = {'/etc/docker/registry/registry.crt': b'path cert',
         '/etc/docker/registry/registry.key': b'pk'}
BLOBS = {'tls-cert-blob': b64(b'blob cert'), 'tls-key-blob': b64(b'bk')}


def test_no_material_means_plain_http(defaults):
    assert registry_tls.select(defaults, disk({})) is None


def test_blobs_win_over_the_relation_and_the_paths():
    material = registry_tls.select(with_options(BLOBS), disk(dict(RELATION, **PATHS)))
    assert material == registry_tls.Material(b'blob cert', b'bk', None, 'blobs')


def test_the_relation_wins_over_files_at_the_paths(defaults):
    material = registry_tls.select(defaults, disk(dict(RELATION, **PATHS)))
    assert material == registry_tls.Material(b'relation cert', b'rk', b'relation ca',
                                             'relation')


def test_files_at_the_paths_when_nothing_else(defaults):
    material = registry_tls.select(defaults, disk(PATHS))
    assert material == registry_tls.Material(b'path cert', b'pk', None, 'paths')


def test_a_certificate_without_its_key_is_no_material(defaults):
    assert registry_tls.select(defaults, disk({registry_paths.RELATION_CERT: b'c'})) is None
    assert registry_tls.select(with_options({'tls-cert-blob': b64(b'c')}), disk({})) is None


# --- option checks ------------------------------------------------------------------------------

@pytest.mark.parametrize('options, problem', [
    ({'tls-minimum-version': 'tls1.0'},
     ConfigProblem('tls-minimum-version', 'must be one of tls1.2, tls1.3')),
    ({'tls-expiry-warning-days': -1},
     ConfigProblem('tls-expiry-warning-days', 'must be from 0 to 36500')),
    ({'tls-extra-sans': 'ok.example.com bad_name!'},
     ConfigProblem('tls-extra-sans', "'bad_name!' is neither a host name nor an IP address")),
    ({'tls-client-ca-blob': 'not base64!'},
     ConfigProblem('tls-client-ca-blob', 'is not valid base64')),
    ({'tls-client-ca-blob': b64(b'just text')},
     ConfigProblem('tls-client-ca-blob', 'holds no PEM certificate')),
])
def test_bad_tls_options_are_named(options, problem):
    assert registry_validation.check_tls(with_options(options)) == [problem]


def test_good_tls_options(defaults):
    config = with_options({'tls-extra-sans': 'a.example.com, 192.0.2.7,*.apps.example.com',
                           'tls-minimum-version': 'tls1.3'})
    assert registry_validation.check_tls(config) == []
    assert registry_validation.check_tls(defaults) == []
    assert registry_validation.extra_names(config) == ['a.example.com', '192.0.2.7',
                                                '*.apps.example.com']


# --- checks on real certificates ----------------------------------------------------------------

def test_a_matching_pair_signed_by_its_ca_has_no_problem(pki):
    info = registry_tls.inspect(registry_tls.Material(pki['cert'], pki['key'], pki['ca'],
                                                      'blobs'))
    assert info.problems == []
    today = datetime.datetime.utcnow()
    assert today + datetime.timedelta(days=29) < info.not_after < \
        today + datetime.timedelta(days=31)


def test_a_key_of_another_certificate(pki):
    info = registry_tls.inspect(registry_tls.Material(pki['cert'], pki['other_key'], None,
                                                      'blobs'))
    assert info.problems == [(1, 'does not match the certificate')]


def test_text_that_is_no_certificate(pki):
    info = registry_tls.inspect(registry_tls.Material(b'hello', pki['key'], None, 'blobs'))
    assert info == registry_tls.CertInfo(None, [(0, 'is not a PEM certificate')])


def test_a_key_that_is_no_key(pki):
    info = registry_tls.inspect(registry_tls.Material(pki['cert'], b'nope', None, 'blobs'))
    assert info.problems == [(1, 'is not a PEM private key')]


def test_a_self_signed_certificate_is_its_own_ca(pki, tmp_path):
    assert registry_tls.self_signed(pki['ca'])
    assert not registry_tls.self_signed(pki['cert'])
    assert not registry_tls.self_signed(b'garbage')


def test_a_ca_that_did_not_sign_the_certificate(pki):
    info = registry_tls.inspect(registry_tls.Material(pki['cert'], pki['key'],
                                                      pki['other_ca'], 'blobs'))
    assert info.problems == [(2, 'did not sign the certificate')]


@pytest.mark.parametrize('source, options', [
    ('blobs', ('tls-cert-blob', 'tls-key-blob', 'tls-ca-blob')),
    ('paths', ('tls-cert-path', 'tls-key-path', 'tls-ca-path')),
    ('relation', ('certificates relation',) * 3),
])
def test_problems_name_the_source_the_operator_fixes(defaults, source, options):
    material = registry_tls.Material(b'c', b'k', b'ca', source)
    info = registry_tls.CertInfo(NOW - datetime.timedelta(days=1),
                                 [(1, 'does not match the certificate'),
                                  (2, 'did not sign the certificate')])
    assert registry_tls.material_problems(defaults, material, info, NOW) == [
        ConfigProblem(options[1], 'does not match the certificate'),
        ConfigProblem(options[2], 'did not sign the certificate'),
        ConfigProblem(options[0], 'certificate expired on 2026-11-27')]


def test_client_auth_needs_a_ca():
    config = with_options({'tls-client-auth': True})
    material = registry_tls.Material(b'c', b'k', None, 'blobs')
    valid = registry_tls.CertInfo(NOW + datetime.timedelta(days=90), [])
    assert registry_tls.material_problems(config, material, valid, NOW) == [
        ConfigProblem('tls-client-auth', 'needs tls-client-ca-blob, or a CA from tls-ca-blob')]
    assert registry_tls.client_ca(config, material._replace(ca=b'ca')) == b'ca'
    explicit = with_options({'tls-client-auth': True, 'tls-client-ca-blob': b64(b'clients')})
    assert registry_tls.client_ca(explicit, material._replace(ca=b'ca')) == b'clients'


def test_a_ca_alone_never_asks_for_client_certificates(defaults):
    material = registry_tls.Material(b'c', b'k', b'ca', 'relation')
    assert registry_tls.client_ca(defaults, material) is None


# --- status and request -------------------------------------------------------------------------

@pytest.mark.parametrize('days_left, note', [
    (31, None),
    (30, 'WARNING: TLS certificate expires in 30 days (2026-12-28)'),
    (2, 'WARNING: TLS certificate expires in 2 days (2026-11-30)'),
])
def test_expiry_warning(days_left, note):
    info = registry_tls.CertInfo(NOW + datetime.timedelta(days=days_left), [])
    assert registry_tls.expiry_note(info, NOW, 30) == note


def test_the_request_names_every_address_clients_use():
    cn, sans = registry_tls.request_names(
        '198.51.100.5', '203.0.113.5', 'juju-unit-5', 'registry.example.com',
        ['198.51.100.9', '198.51.100.5'], ['extra.example.com'])
    assert cn == '198.51.100.5'
    assert sans == ['198.51.100.5', '203.0.113.5', 'juju-unit-5', 'registry.example.com',
                    '198.51.100.9', 'extra.example.com']


# --- configure ----------------------------------------------------------------------------------

@pytest.fixture
def configuring(hookenv, fake_docker):
    from tests.support.registry_testlib import IMAGE_CMD, IMAGE_ID
    fake_docker.images['registry:2'] = (IMAGE_ID, IMAGE_CMD)
    with mock.patch.object(registry_files, 'converge', return_value='started') as converge, \
            mock.patch.object(registry_files, 'ready', return_value=True), \
            mock.patch.object(registry_files, 'read_file', return_value=None):
        yield {'converge': converge, 'hookenv': hookenv}


def test_tls_required_without_material_blocks(configuring):
    configuring['hookenv']['config'].return_value = with_options({'tls-required': True})
    configuring['hookenv']['relation_ids'].return_value = []
    outcome = registry_juju.configure(mock.Mock())
    assert outcome == Outcome(
        BLOCKED, 'tls-required: no certificate; relate a CA (certificates) or set '
        'tls-cert-blob and tls-key-blob')
    configuring['converge'].assert_not_called()


def test_tls_required_waits_for_the_relation_to_deliver(configuring):
    configuring['hookenv']['config'].return_value = with_options({'tls-required': True})
    configuring['hookenv']['relation_ids'].return_value = ['certificates:3']
    outcome = registry_juju.configure(mock.Mock())
    assert outcome.state == WAITING
    configuring['converge'].assert_not_called()


def test_an_expired_blob_certificate_blocks_and_leaves_the_registry_alone(configuring, pki):
    configuring['hookenv']['config'].return_value = with_options(
        {'tls-cert-blob': b64(pki['cert']), 'tls-key-blob': b64(pki['key'])})
    in_a_year = datetime.datetime.utcnow() + datetime.timedelta(days=365)
    with mock.patch.object(registry_juju, '_now', return_value=in_a_year):
        outcome = registry_juju.configure(mock.Mock())
    assert outcome.state != ACTIVE
    assert outcome.message.startswith('Invalid config: tls-cert-blob: certificate expired on ')
    configuring['converge'].assert_not_called()


# --- the unit's own client certificate ----------------------------------------------------------

def test_with_client_auth_the_unit_makes_and_trusts_its_own_client_certificate(
        fake_docker, host_dirs, pki):
    import os
    import ssl
    from tests.support.registry_testlib import IMAGE_CMD, IMAGE_ID, TEMPLATES, UNIT
    from charms.layer.registry_config import Facts, TlsSettings
    config = with_options({'tls-cert-blob': b64(pki['cert']), 'tls-key-blob': b64(pki['key']),
                           'tls-ca-blob': b64(pki['ca']), 'tls-client-auth': True})
    material = registry_tls.select(config, disk({}))
    facts = Facts('', 'secret', TlsSettings('tls1.2', True), False)
    registry_files.converge(config, facts, material, UNIT, (IMAGE_ID, IMAGE_CMD), [],
                              TEMPLATES, lambda name: True)
    cert, key = registry_files.client_identity(config, material)
    assert (cert, key) == (host_dirs['HOST_UNIT_CLIENT_CERT'], host_dirs['HOST_UNIT_CLIENT_KEY'])
    assert os.stat(key).st_mode & 0o777 == 0o600
    ssl.create_default_context().load_cert_chain(cert, key)  # a matching pair
    with open(host_dirs['HOST_TLS_CLIENT_CA'], 'rb') as bundle:
        content = bundle.read()
    with open(cert, 'rb') as unit_cert:
        assert content == pki['ca'].rstrip(b'\n') + b'\n' + unit_cert.read()
    # made once: converging again keeps it
    first = open(cert, 'rb').read()
    registry_files.converge(config, facts, material, UNIT, (IMAGE_ID, IMAGE_CMD), [],
                              TEMPLATES, lambda name: True)
    assert open(cert, 'rb').read() == first


def test_without_client_auth_there_is_no_client_identity(defaults):
    material = registry_tls.Material(b'c', b'k', b'ca', 'relation')
    assert registry_files.client_identity(defaults, material) is None


# --- the certificate request ------------------------------------------------------------------

def test_the_certificate_is_requested_again_only_when_a_name_changes(hookenv, tmp_path):
    from charmhelpers.core import unitdata
    kv = unitdata.Storage(str(tmp_path / 'kv.db'))
    proxies = []
    with mock.patch.object(registry_juju.unitdata, 'kv', return_value=kv), \
            mock.patch.object(registry_juju.hookenv, 'unit_public_ip',
                              return_value='203.0.113.5'), \
            mock.patch.object(registry_juju.socket, 'gethostname', return_value='juju-5'), \
            mock.patch.object(registry_juju, 'proxy_addresses', side_effect=lambda: proxies):
        first = registry_juju.certificate_request()
        assert first[1][1:] == ['203.0.113.5', 'juju-5']
        assert registry_juju.certificate_request() is None  # nothing changed
        proxies.append('198.51.100.30')  # a reverse proxy joins
        assert registry_juju.certificate_request()[1][-1] == '198.51.100.30'
        hookenv['config'].return_value = with_options({'http-host': 'https://r.example.com/',
                                                       'tls-extra-sans': 'extra.example.com'})
        assert registry_juju.certificate_request()[1][-3:] == [
            'r.example.com', '198.51.100.30', 'extra.example.com']
        with mock.patch.object(registry_juju.registry_files, 'remove_file') as removed:
            registry_juju.forget_relation_certificate()
        assert sorted(call.args[0] for call in removed.call_args_list) == sorted(
            [registry_paths.RELATION_CERT, registry_paths.RELATION_KEY, registry_paths.RELATION_CA])
        assert registry_juju.certificate_request() is not None  # a new relation asks again


@pytest.mark.parametrize('bundle,problem', [
    (b'-----BEGIN CERTIFICATE-----\nMIIB!!broken*body\n-----END CERTIFICATE-----\n',
     'holds a certificate that does not parse'),
    (b'-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n',
     'holds a certificate that does not parse'),
    (b'just text', 'holds no PEM certificate'),
])
def test_every_client_ca_block_must_parse(pki, bundle, problem):
    # The registry's PEM reader skips a broken block when the unit's own certificate follows
    # it, and would then trust only the unit: refuse the bundle instead.
    blobs = (bundle, pki['ca'] + bundle) if b'BEGIN' in bundle else (bundle,)
    for blob in blobs:
        config = with_options({'tls-client-ca-blob': b64(blob), 'tls-client-auth': True})
        assert registry_validation.check_tls(config) == [
            ConfigProblem('tls-client-ca-blob', problem)], blob


def test_a_bundle_of_real_client_cas_is_fine(pki):
    config = with_options({'tls-client-ca-blob': b64(pki['ca'] + pki['ca']),
                           'tls-client-auth': True})
    assert registry_validation.check_tls(config) == []
