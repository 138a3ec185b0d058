"""registry_validation: every rule names the option it is about; valid configs pass."""
import pytest

from charms.layer.registry_validation import ConfigProblem, describe, validate
from tests.support.registry_testlib import CA_PEM, CERT_PEM, KEY_PEM, b64, defaults, with_options

TOKEN = {'auth-token-realm': 'https://auth.example.com/token/',
         'auth-token-service': 'registry', 'auth-token-issuer': 'issuer',
         'auth-token-root-certs': b64(CA_PEM)}
SWIFT = {'storage-swift-authurl': 'https://keystone.example.com/v3',
         'storage-swift-username': 'u', 'storage-swift-password': 'p'}
S3 = {'storage-s3-bucket': 'b', 'storage-s3-region': 'us-east-1'}
NOT_BASE64 = 'not base64!!'


def options_of(problems):
    return [p.option for p in problems]


# (id, config changes, option that must be named)
INVALID = [
    ('log-level', {'log-level': 'verbose'}, 'log-level'),
    ('log-level-empty', {'log-level': ''}, 'log-level'),
    ('registry-port-zero', {'registry-port': 0}, 'registry-port'),
    ('registry-port-high', {'registry-port': 65536}, 'registry-port'),
    ('registry-port-bool', {'registry-port': True}, 'registry-port'),
    ('debug-port-negative', {'debug-port': -1}, 'debug-port'),
    ('debug-port-high', {'debug-port': 70000}, 'debug-port'),
    ('ports-equal', {'debug-port': 5000}, 'debug-port'),
    ('tls-ca-blob', {'tls-ca-blob': NOT_BASE64}, 'tls-ca-blob'),
    ('tls-cert-blob', {'tls-cert-blob': NOT_BASE64, 'tls-key-blob': b64(KEY_PEM)},
     'tls-cert-blob'),
    ('tls-key-blob', {'tls-cert-blob': b64(CERT_PEM), 'tls-key-blob': NOT_BASE64},
     'tls-key-blob'),
    ('auth-token-root-certs', dict(TOKEN, **{'auth-token-root-certs': NOT_BASE64}),
     'auth-token-root-certs'),
    ('base64-bad-padding', {'tls-ca-blob': 'abc'}, 'tls-ca-blob'),
    ('both-auth-methods', dict(TOKEN, **{'auth-basic-password': 'pw'}), 'auth-basic-password'),
    ('basic-and-one-token-option', {'auth-basic-password': 'pw',
                                    'auth-token-issuer': 'i'}, 'auth-basic-password'),
    ('token-missing-realm', dict(TOKEN, **{'auth-token-realm': ''}), 'auth-token-realm'),
    ('token-missing-service', dict(TOKEN, **{'auth-token-service': ''}), 'auth-token-service'),
    ('token-missing-issuer', dict(TOKEN, **{'auth-token-issuer': ''}), 'auth-token-issuer'),
    ('token-missing-certs', dict(TOKEN, **{'auth-token-root-certs': ''}),
     'auth-token-root-certs'),
    ('token-realm-not-url', dict(TOKEN, **{'auth-token-realm': 'auth.example.com'}),
     'auth-token-realm'),
    ('basic-without-user', {'auth-basic-password': 'pw', 'auth-basic-user': ''},
     'auth-basic-user'),
    ('basic-user-with-colon', {'auth-basic-password': 'pw', 'auth-basic-user': 'a:b'},
     'auth-basic-user'),
    ('storage-cache', {'storage-cache': 'redis'}, 'storage-cache'),
    ('container-network', {'container-network': 'overlay'}, 'container-network'),
    ('registry-name-space', {'registry-name': 'my registry'}, 'registry-name'),
    ('registry-name-leading-dash', {'registry-name': '-registry'}, 'registry-name'),
    ('registry-name-empty', {'registry-name': ''}, 'registry-name'),
    ('registry-image-upper', {'registry-image': 'Registry:2'}, 'registry-image'),
    ('registry-image-space', {'registry-image': 'registry 2'}, 'registry-image'),
    ('registry-image-empty', {'registry-image': ''}, 'registry-image'),
    ('http-host-scheme', {'http-host': 'ftp://registry.example.com/'}, 'http-host'),
    ('http-host-bare', {'http-host': 'registry.example.com'}, 'http-host'),
    ('http-host-no-slash', {'http-host': 'https://example.com/registry'}, 'http-host'),
    ('http-host-bad-port', {'http-host': 'https://example.com:99999/'}, 'http-host'),
    ('http-proxy-scheme', {'registry-http-proxy': 'socks5://proxy:1080'}, 'registry-http-proxy'),
    ('http-proxy-path', {'registry-http-proxy': 'http://proxy:3128/path/'},
     'registry-http-proxy'),
    ('https-proxy-bare', {'registry-https-proxy': 'proxy:3128'}, 'registry-https-proxy'),
    ('https-proxy-path', {'registry-https-proxy': 'http://proxy/x'}, 'registry-https-proxy'),
    ('cache-remoteurl-scheme', {'cache-remoteurl': 'docker.io'}, 'cache-remoteurl'),
    ('cache-remoteurl-path', {'cache-remoteurl': 'https://registry-1.docker.io/v2/'},
     'cache-remoteurl'),
    ('cache-user-without-password', {'cache-remoteurl': 'https://up.example.com',
                                     'cache-username': 'u'}, 'cache-password'),
    ('cache-password-without-user', {'cache-remoteurl': 'https://up.example.com',
                                     'cache-password': 'p'}, 'cache-password'),
    ('cache-credentials-without-url', {'cache-username': 'u', 'cache-password': 'p'},
     'cache-remoteurl'),
    ('swift-missing-authurl', dict(SWIFT, **{'storage-swift-authurl': ''}),
     'storage-swift-authurl'),
    ('swift-missing-username', dict(SWIFT, **{'storage-swift-username': ''}),
     'storage-swift-username'),
    ('swift-missing-password', dict(SWIFT, **{'storage-swift-password': ''}),
     'storage-swift-password'),
    ('swift-missing-container', dict(SWIFT, **{'storage-swift-container': ''}),
     'storage-swift-container'),
    ('swift-authurl-scheme', dict(SWIFT, **{'storage-swift-authurl': 'keystone:5000/v3'}),
     'storage-swift-authurl'),
    ('s3-and-swift', dict(SWIFT, **S3), 'storage-s3-bucket'),
    ('s3-without-region', {'storage-s3-bucket': 'b'}, 'storage-s3-region'),
    ('s3-accesskey-alone', dict(S3, **{'storage-s3-accesskey': 'ak'}), 'storage-s3-secretkey'),
    ('s3-secretkey-alone', dict(S3, **{'storage-s3-secretkey': 'sk'}), 'storage-s3-secretkey'),
    ('s3-endpoint-path', dict(S3, **{'storage-s3-regionendpoint': 'https://minio/x/'}),
     'storage-s3-regionendpoint'),
    ('s3-endpoint-scheme', dict(S3, **{'storage-s3-regionendpoint': 'minio:9000'}),
     'storage-s3-regionendpoint'),
    ('s3-storageclass', dict(S3, **{'storage-s3-storageclass': 'GLACIER'}),
     'storage-s3-storageclass'),
    ('s3-objectacl', dict(S3, **{'storage-s3-objectacl': 'everyone'}), 'storage-s3-objectacl'),
    # a bucket ACL, not an object ACL: the registry's driver refuses to start with it
    ('s3-objectacl-bucket-only', dict(S3, **{'storage-s3-objectacl': 'log-delivery-write'}),
     'storage-s3-objectacl'),
    ('s3-loglevel', dict(S3, **{'storage-s3-loglevel': 'verbose'}), 'storage-s3-loglevel'),
    # registry 2.8 needs a region even with an endpoint
    ('s3-endpoint-without-region', {'storage-s3-bucket': 'b',
                                    'storage-s3-regionendpoint': 'https://minio:9000'},
     'storage-s3-region'),
    ('s3-storageclass-3x-only', dict(S3, **{'storage-s3-storageclass': 'GLACIER_IR'}),
     'storage-s3-storageclass'),
    ('cache-ttl-on-2.8', {'cache-remoteurl': 'https://up.example.com', 'cache-ttl': '72h'},
     'cache-ttl'),
    ('s3-chunksize', dict(S3, **{'storage-s3-chunksize': 5242879}), 'storage-s3-chunksize'),
    ('s3-copychunksize', dict(S3, **{'storage-s3-multipartcopychunksize': 1024}),
     'storage-s3-multipartcopychunksize'),
    ('s3-copythreshold', dict(S3, **{'storage-s3-multipartcopythresholdsize': 0}),
     'storage-s3-multipartcopythresholdsize'),
    ('s3-concurrency', dict(S3, **{'storage-s3-multipartcopymaxconcurrency': 0}),
     'storage-s3-multipartcopymaxconcurrency'),
    ('s3-options-without-bucket', {'storage-s3-region': 'us-east-1'}, 'storage-s3-bucket'),
    ('s3-keys-without-bucket', {'storage-s3-accesskey': 'a', 'storage-s3-secretkey': 's'},
     'storage-s3-bucket'),
    ('tls-cert-without-key', {'tls-cert-blob': b64(CERT_PEM)}, 'tls-key-blob'),
    ('tls-key-without-cert', {'tls-key-blob': b64(KEY_PEM)}, 'tls-key-blob'),
]


@pytest.mark.parametrize('changes,option', [(c, o) for _, c, o in INVALID],
                         ids=[i for i, _, _ in INVALID])
def test_rule_names_the_option(changes, option):
    problems = validate(with_options(changes))
    assert option in options_of(problems), problems
    for problem in problems:
        assert isinstance(problem, ConfigProblem)
        assert problem.message


def test_real_defaults_are_valid():
    assert validate(defaults()) == []


VALID = [
    ('token-auth', TOKEN),
    ('basic-auth', {'auth-basic-password': 'pw'}),
    ('swift', SWIFT),
    ('s3', S3),
    ('s3-endpoint-and-region', {'storage-s3-bucket': 'b', 'storage-s3-region': 'us-east-1',
                                'storage-s3-regionendpoint': 'https://minio.example.com:9000',
                                'storage-s3-skip-v4-auth': True}),
    ('s3-lowercase-storageclass', dict(S3, **{'storage-s3-storageclass': 'reduced_redundancy'})),
    ('s3-every-acl', dict(S3, **{'storage-s3-objectacl': 'bucket-owner-full-control'})),
    ('tls-blobs-wrapped', {'tls-cert-blob': b64(CERT_PEM)[:10] + '\n' + b64(CERT_PEM)[10:],
                           'tls-key-blob': b64(KEY_PEM), 'tls-ca-blob': b64(CA_PEM)}),
    ('http-host-path', {'http-host': 'https://example.com/registry/'}),
    ('http-host-port', {'http-host': 'http://example.com:8080'}),
    ('proxies', {'registry-http-proxy': 'http://user:pw@proxy.example.com:3128/',
                 'registry-https-proxy': 'http://proxy.example.com:3128'}),
    ('cache', {'cache-remoteurl': 'https://registry-1.docker.io',
               'cache-username': 'u', 'cache-password': 'p'}),
    ('image-with-registry-and-digest', {
        'registry-image': 'registry.example.com:5000/library/registry:2.8.3@sha256:' + 'f' * 64}),
    ('bridge', {'container-network': 'bridge'}),
    ('cache-disabled', {'storage-cache': 'disabled'}),
    ('ports-at-bounds', {'registry-port': 1, 'debug-port': 65535}),
]


@pytest.mark.parametrize('changes', [c for _, c in VALID], ids=[i for i, _ in VALID])
def test_valid_configurations_have_no_problems(changes):
    assert validate(with_options(changes)) == []


def test_token_realm_without_trailing_slash_is_valid():
    # Regression: token realms are endpoints such as https://auth.docker.io/token or
    # https://gitlab.example.com/jwt/auth; the http-host trailing-slash rule must not apply
    # (lib/charms/layer/registry_validation.py, _check_url for auth-token-realm).
    config = with_options(TOKEN, **{'auth-token-realm': 'https://auth.example.com/token'})
    assert validate(config) == []


@pytest.mark.parametrize('option', ['registry-http-proxy', 'registry-https-proxy'])
def test_proxy_with_a_newline_is_rejected(option):
    # Regression: urlsplit() drops newlines, so this URL validates, and the value is written
    # as-is into the container's env file, adding REGISTRY_* variables that override the
    # registry's config (lib/charms/layer/registry_validation.py _check_url and
    # registry_files.proxy_environment).
    value = 'http://proxy\nREGISTRY_STORAGE_DELETE_ENABLED=true'
    assert option in options_of(validate(with_options({option: value})))


def test_none_and_empty_mean_unset():
    config = with_options({'registry-http-proxy': None, 'storage-s3-bucket': None,
                           'http-host': '', 'tls-ca-blob': '   '})
    assert validate(config) == []


def test_several_problems_are_all_reported():
    problems = validate(with_options({'log-level': 'loud', 'registry-port': 0,
                                      'storage-cache': 'x'}))
    assert options_of(problems) == ['log-level', 'registry-port', 'storage-cache']


def test_describe_one_problem():
    assert describe([ConfigProblem('log-level', 'must be one of error, warn, info, debug')]) == \
        'Invalid config: log-level: must be one of error, warn, info, debug'


def test_describe_two_problems():
    assert describe([ConfigProblem('a', 'x'), ConfigProblem('b', 'y')]) == \
        'Invalid config: a: x; b: y'


def test_describe_counts_the_rest():
    problems = [ConfigProblem(o, 'bad') for o in 'abcde']
    assert describe(problems) == 'Invalid config: a: bad; b: bad; and 3 more'


def test_describe_of_real_validation():
    message = describe(validate(with_options({'storage-cache': 'redis'})))
    assert message == 'Invalid config: storage-cache: must be one of inmemory, disabled'


# --- Distribution 3.x images ---------------------------------------------------------------

VALID_3X = [
    ('s3-endpoint-only', {'storage-s3-bucket': 'b',
                          'storage-s3-regionendpoint': 'https://minio.example.com:9000'}),
    ('s3-storageclass-3x', dict(S3, **{'storage-s3-storageclass': 'INTELLIGENT_TIERING'})),
    ('s3-loglevel-3x', dict(S3, **{'storage-s3-loglevel': 'debugwithrequesterrors'})),
    ('cache-ttl-hours', {'cache-remoteurl': 'https://up.example.com', 'cache-ttl': '72h'}),
    ('cache-ttl-mixed', {'cache-remoteurl': 'https://up.example.com', 'cache-ttl': '1h30m'}),
    ('cache-ttl-fraction', {'cache-remoteurl': 'https://up.example.com', 'cache-ttl': '1.5h'}),
    ('cache-ttl-never', {'cache-remoteurl': 'https://up.example.com', 'cache-ttl': '0'}),
]


@pytest.mark.parametrize('changes', [c for _, c in VALID_3X], ids=[i for i, _ in VALID_3X])
def test_valid_with_distribution_3(changes):
    assert validate(with_options(changes), distribution3=True) == []


INVALID_3X = [
    ('swift', SWIFT, 'storage-swift-authurl'),
    ('s3-no-region-no-endpoint', {'storage-s3-bucket': 'b'}, 'storage-s3-region'),
    ('cache-ttl-days', {'cache-remoteurl': 'https://up.example.com', 'cache-ttl': '7d'},
     'cache-ttl'),
    ('cache-ttl-negative', {'cache-remoteurl': 'https://up.example.com', 'cache-ttl': '-1h'},
     'cache-ttl'),
    ('cache-ttl-no-unit', {'cache-remoteurl': 'https://up.example.com', 'cache-ttl': '72'},
     'cache-ttl'),
    ('cache-ttl-without-cache', {'cache-ttl': '72h'}, 'cache-ttl'),
]


@pytest.mark.parametrize('changes,option', [(c, o) for _, c, o in INVALID_3X],
                         ids=[i for i, _, _ in INVALID_3X])
def test_invalid_with_distribution_3(changes, option):
    assert option in options_of(validate(with_options(changes), distribution3=True))


def test_swift_on_distribution_3_says_why():
    problems = validate(with_options(SWIFT), distribution3=True)
    assert ConfigProblem('storage-swift-authurl', 'Swift storage needs a 2.x registry-image '
                         '(Distribution 3 dropped the swift driver)') in problems


def test_cache_ttl_on_2_8_says_what_is_needed():
    problems = validate(with_options({'cache-remoteurl': 'https://up.example.com',
                                      'cache-ttl': '72h'}))
    assert problems == [ConfigProblem('cache-ttl', 'needs a 3.x registry-image (registry 2.8 '
                                      'always keeps cached content for 7 days)')]
