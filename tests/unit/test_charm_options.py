"""Every option of config.yaml takes effect: one expectation per option.

Each case starts from the real config.yaml defaults plus a `base` that makes the option
meaningful (e.g. an S3 bucket for the storage-s3-* options), changes ONE option, and checks
what the registry then sees: its config.yml, the docker run arguments, the env file, the
files it mounts. The changed configuration must also be valid.
"""
import contextlib
import functools
from collections import namedtuple
from unittest import mock

import pytest
from passlib.apache import HtpasswdFile

from charms.layer import registry_config, registry_files
from charms.layer import registry_paths
from tests.support.registry_testlib import (CA_PEM, CERT_PEM, DEFAULT_REGISTRY, KEY_PEM,
                                            UNIT_ADDRESS, b64, option_definitions, run,
                                            with_options)

S3 = {'storage-s3-bucket': 'images', 'storage-s3-region': 'us-east-1',
      'storage-s3-accesskey': 'AKIA', 'storage-s3-secretkey': 'secret'}
SWIFT = {'storage-swift-authurl': 'https://keystone.example.com/v3',
         'storage-swift-username': 'swiftuser', 'storage-swift-password': 'swiftpw'}
# (trailing slash: see test_token_realm_without_trailing_slash_is_valid in test_charm_validation)
TOKEN = {'auth-token-realm': 'https://auth.example.com/token/',
         'auth-token-service': 'registry', 'auth-token-issuer': 'issuer',
         'auth-token-root-certs': b64(CA_PEM)}
BLOBS = {'tls-cert-blob': b64(CERT_PEM), 'tls-key-blob': b64(KEY_PEM)}


# --- expectation helpers: each returns check(result, base_result) ---------------------------

def cfg(path, expected):
    """config.yml has `expected` at dotted `path`."""
    def check(r, base):
        node = r.registry
        for part in path.split('.'):
            assert isinstance(node, dict) and part in node, (path, r.registry)
            node = node[part]
        assert node == expected, (path, node)
    check.label = 'config.yml {} == {!r}'.format(path, expected)
    return check


def cfg_absent(path):
    def check(r, base):
        parent, _, leaf = path.rpartition('.')
        node = r.registry
        for part in parent.split('.') if parent else ():
            node = node[part]
        assert leaf not in node, (path, node)
    return check


def args_has(*sequence):
    """The docker run arguments contain `sequence` contiguously."""
    def check(r, base):
        n = len(sequence)
        assert any(tuple(r.args[i:i + n]) == sequence for i in range(len(r.args))), \
            (sequence, r.args)
    return check


def args_lacks(*sequence):
    def check(r, base):
        n = len(sequence)
        assert not any(tuple(r.args[i:i + n]) == sequence for i in range(len(r.args))), \
            (sequence, r.args)
    return check


def env_has(*lines):
    def check(r, base):
        for line in lines:
            assert line in r.env.splitlines(), (line, r.env)
    return check


def file_is(path, content, mode=None):
    def check(r, base):
        assert path in r.files, (path, sorted(r.files))
        assert r.files[path].content == content
        if mode is not None:
            assert r.files[path].mode == mode
    return check


def htpasswd_verifies(user, password):
    def check(r, base):
        wanted = r.files[registry_paths.HOST_HTPASSWD]
        assert wanted.mode == 0o600
        entry = HtpasswdFile.from_string(wanted.content)
        assert entry.users() == [user]
        assert entry.check_password(user, password)
        assert wanted.content.startswith(user.encode() + b':$2')  # bcrypt
    return check


def spec_field(field, expected):
    def check(r, base):
        assert getattr(r.spec, field) == expected
    return check


def same_fingerprint(r, base):
    assert r.spec.fingerprint == base.spec.fingerprint
    assert r.args == base.args
    assert {p: f.content for p, f in r.files.items()} == \
        {p: f.content for p, f in base.files.items()}


def all_of(*checks):
    def check(r, base):
        for c in checks:
            c(r, base)
    return check


Case = namedtuple('Case', 'option value base check changes_fingerprint distribution3')


def case(option, value, check, base=None, changes_fingerprint=True, distribution3=False):
    """distribution3: run with a Distribution 3.x registry image (3.x-only options)."""
    return Case(option, value, base or {}, check, changes_fingerprint, distribution3)


@contextlib.contextmanager
def image_generation(distribution3):
    """Validate and render as for a 3.x registry image when distribution3."""
    if not distribution3:
        yield
        return
    from charms.layer import registry_juju, registry_validation
    with mock.patch.object(registry_validation, 'validate', functools.partial(
            registry_validation.validate, distribution3=True)), \
            mock.patch.object(registry_juju, 'facts', functools.partial(
                registry_juju.facts, distribution3=True)):
        yield


EXPECTATIONS = [
    # auth
    case('auth-basic-user', 'alice', htpasswd_verifies('alice', 'pw'),
         base={'auth-basic-password': 'pw'}),
    case('auth-basic-password', 's3cret', all_of(
        htpasswd_verifies('admin', 's3cret'),
        cfg('auth', {'htpasswd': {'realm': 'Docker Registry',
                                  'path': '/etc/docker/registry/htpasswd'}}),
        args_has('-v', registry_paths.HOST_HTPASSWD + ':/etc/docker/registry/htpasswd:ro'))),
    case('auth-token-realm', 'https://auth.example.com/v2/token/',
         cfg('auth.token.realm', 'https://auth.example.com/v2/token/'), base=TOKEN),
    case('auth-token-service', 'other-service', cfg('auth.token.service', 'other-service'),
         base=TOKEN),
    case('auth-token-issuer', 'other-issuer', cfg('auth.token.issuer', 'other-issuer'),
         base=TOKEN),
    case('auth-token-root-certs', b64(CERT_PEM + CA_PEM), all_of(
        file_is(registry_paths.HOST_TOKEN_CERTS, CERT_PEM + CA_PEM, 0o600),
        cfg('auth.token.rootcertbundle', '/etc/docker/registry/token-root-certs.pem'),
        args_has('-v', registry_paths.HOST_TOKEN_CERTS
                 + ':/etc/docker/registry/token-root-certs.pem:ro')),
         base=TOKEN),
    # pull-through cache
    case('cache-remoteurl', 'https://upstream.example.com',
         cfg('proxy', {'remoteurl': 'https://upstream.example.com'})),
    case('cache-username', 'bob', cfg('proxy', {'remoteurl': 'https://up.example.com',
                                                'username': 'bob', 'password': 'pw'}),
         base={'cache-remoteurl': 'https://up.example.com', 'cache-username': 'someone',
               'cache-password': 'pw'}),
    case('cache-password', 'pw2', cfg('proxy.password', 'pw2'),
         base={'cache-remoteurl': 'https://up.example.com', 'cache-username': 'bob',
               'cache-password': 'pw'}),
    # proxy.ttl exists from Distribution 3 on; a 2.8 image blocks (test_charm_validation)
    case('cache-ttl', '72h', cfg('proxy.ttl', '72h'),
         base={'cache-remoteurl': 'https://up.example.com'}, distribution3=True),
    # http / debug
    case('debug-port', 6001, cfg('http.debug.addr', UNIT_ADDRESS + ':6001'),
         base={'prometheus-metrics': True}),
    case('prometheus-metrics', True, cfg('http.debug', {
        'addr': UNIT_ADDRESS + ':5001', 'prometheus': {'enabled': True, 'path': '/metrics'}})),
    case('http-host', 'https://registry.example.com/',
         cfg('http.host', 'https://registry.example.com/')),
    case('log-level', 'debug', cfg('log.level', 'debug')),
    case('registry-port', 5050, cfg('http.addr', ':5050')),
    case('listen-on-unit-address', True, cfg('http.addr', UNIT_ADDRESS + ':5000')),
    # container
    case('registry-image', 'mirror.example.com:5000/library/registry:2.8',
         all_of(spec_field('image', 'mirror.example.com:5000/library/registry:2.8'),
                args_has('mirror.example.com:5000/library/registry:2.8', 'serve',
                         '/etc/docker/registry/config.yml')),
         # same image id in these tests: the id, not the name, is in the fingerprint
         changes_fingerprint=False),
    case('registry-name', 'registry-two', all_of(spec_field('name', 'registry-two'),
                                                 args_has('--name', 'registry-two'))),
    case('container-network', 'bridge', all_of(args_has('-p', '5000:5000'),
                                               args_lacks('--network', 'host'))),
    case('registry-http-proxy', 'http://proxy.example.com:3128',
         env_has('HTTP_PROXY=http://proxy.example.com:3128',
                 'http_proxy=http://proxy.example.com:3128',
                 'NO_PROXY=localhost,127.0.0.1,::1,' + UNIT_ADDRESS)),
    case('registry-https-proxy', 'http://proxy.example.com:3129',
         env_has('HTTPS_PROXY=http://proxy.example.com:3129',
                 'https_proxy=http://proxy.example.com:3129',
                 'no_proxy=localhost,127.0.0.1,::1,' + UNIT_ADDRESS)),
    # storage
    case('storage-cache', 'disabled', cfg_absent('storage.cache')),
    case('storage-delete', True, cfg('storage.delete.enabled', True)),
    case('storage-redirect-disable', False, cfg('storage.redirect.disable', False)),
    case('storage-read-only', True, cfg('storage.maintenance.readonly.enabled', True)),
    case('storage-swift-authurl', 'https://keystone.example.com/v3', all_of(
        cfg('storage.swift', {'authurl': 'https://keystone.example.com/v3',
                              'username': 'swiftuser', 'password': 'swiftpw',
                              'container': 'docker-registry'}),
        cfg_absent('storage.filesystem'),
        args_lacks('-v', '/srv/registry:/var/lib/registry')),
         base={'storage-swift-username': 'swiftuser', 'storage-swift-password': 'swiftpw'}),
    case('storage-swift-container', 'images', cfg('storage.swift.container', 'images'),
         base=SWIFT),
    case('storage-swift-password', 'pw2', cfg('storage.swift.password', 'pw2'), base=SWIFT),
    case('storage-swift-region', 'RegionTwo', cfg('storage.swift.region', 'RegionTwo'),
         base=SWIFT),
    case('storage-swift-tenant', 'project', cfg('storage.swift.tenant', 'project'),
         base=SWIFT),
    case('storage-swift-username', 'other', cfg('storage.swift.username', 'other'),
         base=SWIFT),
    case('storage-swift-domain', 'Default', cfg('storage.swift.domain', 'Default'),
         base=SWIFT),
    # TLS from blobs: served from the charm's own copies under /etc/docker/registry/tls
    case('tls-cert-blob', b64(CERT_PEM), all_of(
        cfg('http.tls', {'certificate': '/etc/docker/registry/tls/server.crt',
                         'key': '/etc/docker/registry/tls/server.key',
                         'minimumtls': 'tls1.2'}),
        file_is('/etc/docker/registry/tls/server.crt', CERT_PEM, 0o644),
        file_is('/etc/docker/registry/tls/server.key', KEY_PEM, 0o600),
        args_has('-v', '/etc/docker/registry/tls/server.crt:'
                       '/etc/docker/registry/tls/server.crt:ro')),
         base={'tls-key-blob': b64(KEY_PEM)}),
    case('tls-key-blob', b64(KEY_PEM), all_of(
        cfg('http.tls.key', '/etc/docker/registry/tls/server.key'),
        args_has('-v', '/etc/docker/registry/tls/server.key:'
                       '/etc/docker/registry/tls/server.key:ro')),
         base={'tls-cert-blob': b64(CERT_PEM)}),
    case('tls-ca-blob', b64(CA_PEM), file_is('/etc/docker/registry/tls/ca.crt', CA_PEM, 0o644),
         base=BLOBS),
    # TLS from the operator's files at the tls-*-path locations (see DISK below), copied
    case('tls-cert-path', '/custom/cert.pem', all_of(
        cfg('http.tls.certificate', '/etc/docker/registry/tls/server.crt'),
        file_is('/etc/docker/registry/tls/server.crt', CERT_PEM, 0o644))),
    case('tls-key-path', '/custom/key.pem', all_of(
        cfg('http.tls.key', '/etc/docker/registry/tls/server.key'),
        file_is('/etc/docker/registry/tls/server.key', KEY_PEM, 0o600)),
         base={'tls-cert-path': '/custom/cert.pem'}),
    case('tls-ca-path', '/custom/ca.pem', file_is('/etc/docker/registry/tls/ca.crt', CA_PEM, 0o644),
         base={'tls-cert-path': '/custom/cert.pem', 'tls-key-path': '/custom/key.pem'}),
    case('tls-minimum-version', 'tls1.3', cfg('http.tls.minimumtls', 'tls1.3'), base=BLOBS),
    case('tls-client-auth', True, all_of(
        cfg('http.tls.clientcas', ['/etc/docker/registry/tls/client-ca.crt']),
        file_is('/etc/docker/registry/tls/client-ca.crt', CA_PEM, 0o644)),
         base=dict(BLOBS, **{'tls-ca-blob': b64(CA_PEM)})),
    case('tls-client-ca-blob', b64(CA_PEM), all_of(
        cfg('http.tls.clientcas', ['/etc/docker/registry/tls/client-ca.crt']),
        file_is('/etc/docker/registry/tls/client-ca.crt', CA_PEM, 0o644)),
         base=dict(BLOBS, **{'tls-client-auth': True})),
    # Used by the certificate request and the status (test_charm_tls.py), not by the registry
    case('tls-extra-sans', 'registry.example.com', same_fingerprint, changes_fingerprint=False),
    case('tls-required', True, same_fingerprint, base=BLOBS, changes_fingerprint=False),
    case('tls-expiry-warning-days', 7, same_fingerprint, changes_fingerprint=False),
    # S3
    case('storage-s3-bucket', 'images', all_of(
        cfg('storage.s3', {'bucket': 'images', 'region': 'us-east-1', 'forcepathstyle': False,
                           'encrypt': False, 'secure': True, 'skipverify': False,
                           'v4auth': True, 'chunksize': 10485760,
                           'multipartcopychunksize': 33554432,
                           'multipartcopymaxconcurrency': 100,
                           'multipartcopythresholdsize': 33554432,
                           'storageclass': 'STANDARD', 'usedualstack': False,
                           'accelerate': False, 'objectacl': 'private', 'loglevel': 'off'}),
        cfg_absent('storage.filesystem'),
        args_lacks('-v', '/srv/registry:/var/lib/registry')),
         base={'storage-s3-region': 'us-east-1'}),
    case('storage-s3-accesskey', 'AKIA2', cfg('storage.s3.accesskey', 'AKIA2'), base=S3),
    case('storage-s3-secretkey', 'secret2', cfg('storage.s3.secretkey', 'secret2'), base=S3),
    case('storage-s3-region', 'eu-west-1', cfg('storage.s3.region', 'eu-west-1'), base=S3),
    case('storage-s3-regionendpoint', 'https://minio.example.com:9000',
         cfg('storage.s3.regionendpoint', 'https://minio.example.com:9000'), base=S3),
    case('storage-s3-forcepathstyle', True, cfg('storage.s3.forcepathstyle', True), base=S3),
    case('storage-s3-encrypt', True, cfg('storage.s3.encrypt', True), base=S3),
    case('storage-s3-keyid', 'kms-key', cfg('storage.s3.keyid', 'kms-key'), base=S3),
    case('storage-s3-secure', False, cfg('storage.s3.secure', False), base=S3),
    case('storage-s3-skip-verify', True, cfg('storage.s3.skipverify', True), base=S3),
    # skip-v4-auth applies to S3-compatible endpoints only (Amazon S3 accepts only v4)
    case('storage-s3-skip-v4-auth', False, cfg('storage.s3.v4auth', True),
         base=dict(S3, **{'storage-s3-regionendpoint': 'http://minio.example.com:9000'})),
    case('storage-s3-chunksize', 6291456, cfg('storage.s3.chunksize', 6291456), base=S3),
    case('storage-s3-multipartcopychunksize', 6291456,
         cfg('storage.s3.multipartcopychunksize', 6291456), base=S3),
    case('storage-s3-multipartcopymaxconcurrency', 7,
         cfg('storage.s3.multipartcopymaxconcurrency', 7), base=S3),
    case('storage-s3-multipartcopythresholdsize', 6291456,
         cfg('storage.s3.multipartcopythresholdsize', 6291456), base=S3),
    case('storage-s3-rootdirectory', '/registry', cfg('storage.s3.rootdirectory', '/registry'),
         base=S3),
    case('storage-s3-storageclass', 'REDUCED_REDUNDANCY',
         cfg('storage.s3.storageclass', 'REDUCED_REDUNDANCY'), base=S3),
    case('storage-s3-useragent', 'ck-registry', cfg('storage.s3.useragent', 'ck-registry'),
         base=S3),
    case('storage-s3-usedualstack', True, cfg('storage.s3.usedualstack', True), base=S3),
    case('storage-s3-accelerate', True, cfg('storage.s3.accelerate', True), base=S3),
    case('storage-s3-objectacl', 'bucket-owner-full-control',
         cfg('storage.s3.objectacl', 'bucket-owner-full-control'), base=S3),
    case('storage-s3-loglevel', 'debug', cfg('storage.s3.loglevel', 'debug'), base=S3),
    # nrpe options: used by checks written later; the registry must not be recreated
    case('nagios_context', 'production', same_fingerprint, changes_fingerprint=False),
    case('nagios_servicegroups', 'registries,ck', same_fingerprint, changes_fingerprint=False),
]

# Files on the unit for the tls-*-path cases.
DISK = {'/custom/cert.pem': CERT_PEM, '/custom/key.pem': KEY_PEM, '/custom/ca.pem': CA_PEM,
        '/etc/docker/registry/registry.key': b'-----BEGIN PRIVATE KEY-----\nOLD\n'}


def test_expectation_table_covers_every_option():
    options = set(option_definitions())
    covered = [c.option for c in EXPECTATIONS]
    assert len(covered) == len(set(covered)), 'an option appears twice in EXPECTATIONS'
    assert set(covered) == options, {
        'missing': sorted(options - set(covered)), 'unknown': sorted(set(covered) - options)}


def test_every_case_changes_the_option_from_its_base():
    for c in EXPECTATIONS:
        before = with_options(c.base)[c.option]
        assert before != c.value, c.option


@pytest.mark.parametrize('c', EXPECTATIONS, ids=[c.option for c in EXPECTATIONS])
def test_option_takes_effect(c):
    with image_generation(c.distribution3):
        base = run(with_options(c.base), disk=DISK)
        changed = run(with_options(c.base, **{c.option: c.value}), disk=DISK)
    assert changed.problems == [], changed.problems
    c.check(changed, base)
    if c.changes_fingerprint:
        assert changed.spec.fingerprint != base.spec.fingerprint
    else:
        assert changed.spec.fingerprint == base.spec.fingerprint


def test_defaults_render_the_expected_registry_config(defaults):
    r = run(defaults)
    assert r.problems == []
    assert r.registry == DEFAULT_REGISTRY
    assert r.env == ''
    assert set(r.files) == {registry_paths.HOST_CONFIG, registry_paths.HOST_ENV}
    assert r.files[registry_paths.HOST_CONFIG].mode == 0o600
    assert r.args == [
        '--name', 'registry', '--restart', 'unless-stopped',
        '--env-file', '/etc/docker/registry/registry.env',
        '--label', 'io.juju.docker-registry.unit=docker-registry/0',
        '--log-driver', 'json-file', '--log-opt', 'max-size=10m', '--log-opt', 'max-file=5',
        '--network', 'host',
        '-v', '/etc/docker/registry/config.yml:/etc/docker/registry/config.yml:ro',
        '-v', '/srv/registry:/var/lib/registry',
        '--label', 'io.juju.docker-registry.fingerprint=' + r.spec.fingerprint,
        'registry:2', 'serve', '/etc/docker/registry/config.yml']


def test_no_secret_until_the_leader_shares_one(defaults):
    assert 'secret' not in run(defaults, leader_secret=None).registry['http']


def test_bridge_network_publishes_on_the_unit_address():
    r = run(with_options({'container-network': 'bridge', 'prometheus-metrics': True,
                          'listen-on-unit-address': True}))
    pairs = list(zip(r.args, r.args[1:]))
    assert ('-p', UNIT_ADDRESS + ':5000:5000') in pairs
    # the debug server (pprof too) never on every address
    assert ('-p', UNIT_ADDRESS + ':5001:5001') in pairs
    # in bridge mode the registry binds every interface inside its own namespace
    assert r.registry['http']['addr'] == ':5000'
    assert r.registry['http']['debug']['addr'] == ':5001'


def test_bridge_network_without_listen_on_unit_address_publishes_the_registry_everywhere():
    r = run(with_options({'container-network': 'bridge', 'prometheus-metrics': True}))
    pairs = list(zip(r.args, r.args[1:]))
    assert ('-p', '5000:5000') in pairs
    assert ('-p', UNIT_ADDRESS + ':5001:5001') in pairs


def test_host_network_debug_server_listens_on_the_unit_address_only():
    r = run(with_options({'prometheus-metrics': True}))
    assert r.registry['http']['addr'] == ':5000'
    assert r.registry['http']['debug']['addr'] == UNIT_ADDRESS + ':5001'


def test_container_logs_are_bounded():
    pairs = list(zip(run(with_options()).args, run(with_options()).args[1:]))
    assert ('--log-driver', 'json-file') in pairs
    assert ('--log-opt', 'max-size=10m') in pairs and ('--log-opt', 'max-file=5') in pairs


def test_metrics_off_publishes_no_debug_port():
    r = run(with_options({'container-network': 'bridge'}))
    assert '5001:5001' not in r.args
    assert 'debug' not in r.registry['http']


def test_distribution_3_images_read_their_config_elsewhere(defaults):
    from tests.support.registry_testlib import TEMPLATES, UNIT
    r = run(defaults)
    spec = registry_files.desired_container(
        defaults, r.facts, UNIT, ('sha256:' + 'b' * 64, ['serve', '/etc/distribution/config.yml']),
        r.files)
    assert spec.args[-2:] == ['serve', '/etc/distribution/config.yml']
    assert '/etc/docker/registry/config.yml:/etc/distribution/config.yml:ro' in spec.args
    assert TEMPLATES  # same templates dir for both


def test_blobs_win_over_files_at_the_paths():
    other = b'-----BEGIN CERTIFICATE-----\nOTHER\n-----END CERTIFICATE-----\n'
    r = run(with_options(BLOBS), disk={'/etc/docker/registry/registry.crt': other,
                                       '/etc/docker/registry/registry.key': KEY_PEM})
    assert r.files['/etc/docker/registry/tls/server.crt'].content == CERT_PEM
    # the operator's files are read, never written
    assert '/etc/docker/registry/registry.crt' not in r.files


def test_cert_without_key_on_disk_means_no_tls(defaults):
    r = run(defaults, disk={'/etc/docker/registry/registry.crt': CERT_PEM})
    assert 'tls' not in r.registry['http']
    assert r.tls is None


def test_s3_and_swift_parameters_map_every_s3_option():
    s3_options = {o[len('storage-s3-'):] for o in option_definitions()
                  if o.startswith('storage-s3-')}
    assert s3_options - set(registry_config.S3_PARAMETERS) == {'skip-v4-auth'}
    swift_options = {o[len('storage-swift-'):] for o in option_definitions()
                     if o.startswith('storage-swift-')}
    assert swift_options == set(registry_config.SWIFT_PARAMETERS)
