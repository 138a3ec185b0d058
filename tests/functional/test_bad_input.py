"""The bad-input suite (issue 12): hostile or invalid values for every kind of option and
for every action parameter, on one real unit.

For each value: no traceback, a status (options) or an action failure (parameters) whose
message names the option or parameter, the registry answering /v2/ throughout (probed
every 50 ms), and the same images served afterwards. Values the charm can check are
refused before anything changes; the registry's own refusals are tested by
test_transactions.

Juju itself refuses a value of the wrong type (a string for an int option, a missing
required parameter, a value outside an action parameter's enum), as the runner does; the
values here all pass those checks. Every image named is on 127.0.0.1: nothing leaves the
machine even if a check failed to stop the action.
"""
import base64
import json

import pytest

from tests.support.clients import pulled_digest
from tests.support.deployment import APP
from tests.support.probe import Prober, http_check

pytestmark = pytest.mark.functional

UNIT = APP + '/0'
HUGE = 100 * 1024
# Nothing listens on port 9 (discard): an image no action here may reach anyway.
LOCAL_IMAGE = '127.0.0.1:9/busybox:1'
# What the status or the action's message may hold at most: a hostile value is never
# echoed whole.
MAX_MESSAGE = 600
S3 = {'storage-s3-bucket': 'images', 'storage-s3-region': 'us-east-1'}
TOKEN = {'auth-token-realm': 'https://auth.example.com/token',
         'auth-token-service': 'registry', 'auth-token-issuer': 'auth.example.com'}


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def case(case_id, values, option=None):
    """A config case: values to set, and the option the blocked status must name (the
    only key of values when not given)."""
    return pytest.param(values, option or next(iter(values)), id=case_id)


CONFIG_CASES = [
    # URLs
    case('http-host-ftp', {'http-host': 'ftp://registry.example.com/'}),
    case('http-host-ipv6-unclosed', {'http-host': 'http://[::1'}),
    case('http-host-ipv6-bad-port', {'http-host': 'https://[fd00::1]:99999/'}),
    case('http-host-space', {'http-host': 'https://registry example.com/'}),
    case('http-host-newline', {'http-host': 'https://registry.example.com/\nauth: {}'}),
    case('http-host-long-name', {'http-host': 'https://' + 'h' * 300 + '.example.com/'}),
    case('http-host-100k', {'http-host': 'https://' + 'h' * HUGE + '/'}),
    case('http-host-no-slash', {'http-host': 'https://registry.example.com/v2'}),
    case('http-host-leading-dash', {'http-host': '--insecure'}),
    case('http-host-json', {'http-host': '{"host": "registry.example.com"}'}),
    case('http-proxy-path', {'registry-http-proxy': 'http://proxy.example.com:3128/x/y'}),
    case('https-proxy-socks', {'registry-https-proxy': 'socks5://127.0.0.1:1080'}),
    case('https-proxy-ipv6', {'registry-https-proxy': 'http://[fd00::1:3128'}),
    case('cache-url-credentials', {'cache-remoteurl': 'https://user:pw@mirror.example.com'}),
    case('cache-url-yaml', {'cache-remoteurl': '[mirror, {a: 1}]'}),
    case('cache-user-without-password', {'cache-username': 'puller'}, 'cache-password'),
    case('token-realm-javascript', dict(TOKEN, **{'auth-token-realm': 'javascript:alert(1)',
                                                  'auth-token-root-certs': b64('x')}),
         'auth-token-realm'),
    case('s3-endpoint-ipv6', dict(S3, **{'storage-s3-regionendpoint': 'http://[::1'}),
         'storage-s3-regionendpoint'),
    case('swift-authurl-control', {'storage-swift-authurl': 'https://keystone\x07/v3',
                                   'storage-swift-username': 'u',
                                   'storage-swift-password': 'p'}, 'storage-swift-authurl'),
    # authentication
    case('user-colon', {'auth-basic-user': 'ad:min', 'auth-basic-password': 'pw'},
         'auth-basic-user'),
    case('user-tab', {'auth-basic-user': 'ad\tmin', 'auth-basic-password': 'pw'},
         'auth-basic-user'),
    case('user-rtl-override', {'auth-basic-user': 'admin\u202e', 'auth-basic-password': 'pw'},
         'auth-basic-user'),
    case('user-300', {'auth-basic-user': 'u' * 300, 'auth-basic-password': 'pw'},
         'auth-basic-user'),
    case('user-empty', {'auth-basic-user': '', 'auth-basic-password': 'pw'},
         'auth-basic-user'),
    case('password-73-bytes', {'auth-basic-password': 'p' * 73}),
    case('password-unicode-over-72-bytes', {'auth-basic-password': 'ü' * 40}),
    case('password-100k', {'auth-basic-password': 'p' * HUGE}),
    case('basic-and-token', dict(TOKEN, **{'auth-basic-password': 'pw',
                                           'auth-token-root-certs': b64('x')}),
         'auth-basic-password'),
    case('token-incomplete', {'auth-token-realm': 'https://auth.example.com/token'},
         'auth-token-service'),
    case('token-certs-not-base64', dict(TOKEN, **{'auth-token-root-certs': 'not base64!'}),
         'auth-token-root-certs'),
    # ports (int)
    case('registry-port-0', {'registry-port': 0}),
    case('registry-port-70000', {'registry-port': 70000}),
    case('registry-port-negative', {'registry-port': -1}),
    case('debug-port-65536', {'debug-port': 65536}),
    case('tls-expiry-days-negative', {'tls-expiry-warning-days': -5}),
    case('tls-expiry-days-overflow', {'tls-expiry-warning-days': 1000000000}),
    case('s3-chunksize-small', dict(S3, **{'storage-s3-chunksize': 1024}),
         'storage-s3-chunksize'),
    case('s3-concurrency-zero', dict(S3, **{'storage-s3-multipartcopymaxconcurrency': 0}),
         'storage-s3-multipartcopymaxconcurrency'),
    # choices and names
    case('log-level-unknown', {'log-level': 'verbose'}),
    case('log-level-injection', {'log-level': 'info; rm -rf /'}),
    case('log-level-unicode', {'log-level': 'ínfo'}),
    case('storage-cache-redis', {'storage-cache': 'redis'}),
    case('container-network-option', {'container-network': '--privileged'}),
    case('registry-name-dash', {'registry-name': '-registry'}),
    case('registry-name-path', {'registry-name': '../../etc'}),
    case('registry-name-unicode', {'registry-name': 'régistry'}),
    case('registry-image-shell', {'registry-image': 'registry:2; rm -rf /'}),
    case('registry-image-option', {'registry-image': '--help'}),
    case('registry-image-upper', {'registry-image': 'REGISTRY:2'}),
    case('cache-ttl-words', {'cache-remoteurl': 'https://mirror.example.com',
                             'cache-ttl': '1 day'}, 'cache-ttl'),
    case('cache-ttl-without-cache', {'cache-ttl': '72h'}),
    case('s3-region-without-bucket', {'storage-s3-region': 'us-east-1'}, 'storage-s3-bucket'),
    case('s3-storage-class', dict(S3, **{'storage-s3-storageclass': 'COLD'}),
         'storage-s3-storageclass'),
    case('s3-object-acl', dict(S3, **{'storage-s3-objectacl': 'everyone'}),
         'storage-s3-objectacl'),
    case('s3-and-swift', dict(S3, **{'storage-swift-authurl': 'https://keystone/v3',
                                     'storage-swift-username': 'u',
                                     'storage-swift-password': 'p'}), 'storage-s3-bucket'),
    case('swift-incomplete', {'storage-swift-username': 'u'}, 'storage-swift-authurl'),
    # TLS
    case('tls-cert-without-key', {'tls-cert-blob': b64('cert')}, 'tls-key-blob'),
    case('tls-cert-not-base64', {'tls-cert-blob': 'not base64 \u2713',
                                 'tls-key-blob': b64('key')}, 'tls-cert-blob'),
    case('tls-pair-garbage', {'tls-cert-blob': b64('-----BEGIN CERTIFICATE-----\nx\n'),
                              'tls-key-blob': b64('{"key": 1}')}, 'tls-cert-blob'),
    case('tls-ca-not-base64', {'tls-ca-blob': '%%%'}),
    case('tls-paths-secret-file', {'tls-cert-path': '/etc/shadow',
                                   'tls-key-path': '/etc/shadow'}, 'tls-cert-path'),
    case('tls-minimum-tls1.0', {'tls-minimum-version': 'tls1.0'}),
    case('tls-extra-sans-shell', {'tls-extra-sans': 'ok.example.com $(reboot)'}),
    case('tls-extra-sans-path', {'tls-extra-sans': '../../etc/passwd'}),
    case('tls-client-ca-text', {'tls-client-ca-blob': b64('just text'),
                                'tls-client-auth': True}, 'tls-client-ca-blob'),
    case('tls-required-without-certificate', {'tls-required': True}),
    case('tls-client-auth-without-ca', {'tls-cert-blob': 'placeholder'}, 'tls-client-auth'),
]


def workload(d):
    s = d.unit_status(UNIT)
    return s['current'], s['message']


@pytest.fixture(scope='module')
def reg(seeded_deploy, upstream_registry, test_ca):
    d = seeded_deploy(upstream_registry, 'bad')
    d.model.config(APP, {'storage-delete': True})  # delete and rmi then read their image
    server = test_ca.server_cert('bad-server', [d.address()])
    d.tls_blobs = {'tls-cert-blob': b64(server.cert.read_bytes()),
                   'tls-key-blob': b64(server.key.read_bytes())}
    d.catalog = d.listing()
    yield d
    d.model.destroy()


@pytest.fixture
def unit(reg):
    """The unit, Ready before the test; afterwards still Ready and serving the same images,
    with no hook failed and no traceback logged."""
    d = reg
    assert workload(d) == ('active', d.ready), d.model.status_history(UNIT)[-6:]
    hooks_mark, log_mark = len(d.model.hooks_run(UNIT)), len(d.model.log(UNIT))
    with Prober(http_check(d.address(), d.port, registry=True), interval=0.05,
                wait_serving=True) as probe:
        yield d
    assert workload(d) == ('active', d.ready), d.model.status_history(UNIT)[-6:]
    assert probe.failures() == [], probe.summary('while the bad value was tried')
    runs = d.model.hooks_run(UNIT)[hooks_mark:]
    assert all(rc == 0 for _, rc in runs), runs
    assert 'Traceback' not in d.model.log(UNIT)[log_mark:]
    assert pulled_digest(d.seed_ref) == d.seed_digest


@pytest.mark.parametrize('values,option', CONFIG_CASES)
def test_a_bad_option_blocks_naming_it_while_the_registry_serves(unit, values, option):
    d = unit
    if values.get('tls-cert-blob') == 'placeholder':  # a real pair: client auth needs a CA
        values = dict(d.tls_blobs, **{'tls-client-auth': True})
    before = d.container_id()
    d.model.config(APP, values)
    try:
        state, message = workload(d)
        assert state == 'blocked' and option in message, (state, message[:MAX_MESSAGE])
        assert len(message) <= MAX_MESSAGE, message[:MAX_MESSAGE]
        assert 'root:' not in message  # /etc/shadow's lines are never shown
        assert d.container_id() == before
    finally:
        restore(d, values)


def restore(d, values):
    """Put the options in values back as the deployment had them."""
    deployed = {'registry-port': d.port, 'debug-port': d.debug_port, 'storage-delete': True}
    back = {option: deployed[option] for option in values if option in deployed}
    if back:
        d.model.config(APP, back)
    others = [option for option in values if option not in deployed]
    if others:
        d.model.config(APP, reset=others)


def action(action_id, name, params, named):
    return pytest.param(name, params, named, id=action_id)


ACTION_CASES = [
    action('push-option-like', 'push', {'image': '--help'}, 'image'),
    action('push-shell', 'push', {'image': 'foo;rm -rf /'}, 'image'),
    action('push-huge', 'push', {'image': 'a' * HUGE}, 'image'),
    action('push-ipv6-unclosed', 'push', {'image': '[fd00::1/x:1'}, 'image'),
    action('push-bad-tag', 'push', {'image': LOCAL_IMAGE, 'tag': 'bad tag!'}, 'tag'),
    action('push-user-without-password', 'push', {'image': LOCAL_IMAGE, 'username': 'u'},
           'password'),
    action('mirror-nothing', 'mirror', {}, 'images'),
    action('mirror-relative-file', 'mirror', {'file': 'etc/passwd'}, 'file'),
    action('mirror-secret-file', 'mirror', {'file': '/etc/shadow'}, 'file'),
    action('mirror-proc-environ', 'mirror', {'file': '/proc/self/environ'}, 'file'),
    action('mirror-directory', 'mirror', {'file': '/etc'}, 'file'),
    action('mirror-parallel-zero', 'mirror', {'images': LOCAL_IMAGE, 'parallel': 0},
           'parallel'),
    action('mirror-parallel-huge', 'mirror', {'images': LOCAL_IMAGE, 'parallel': 100000},
           'parallel'),
    action('mirror-unicode-image', 'mirror', {'images': 'büsybox:1'}, 'images'),
    action('mirror-bad-arch', 'mirror', {'images': LOCAL_IMAGE, 'arches': 'x86'},
           'arches'),
    action('mirror-prefix-path', 'mirror', {'images': LOCAL_IMAGE, 'prefix': '../x'},
           'prefix'),
    action('images-page-size-zero', 'images', {'page-size': 0}, 'page-size'),
    action('images-nul', 'images', {'repository': 'a\x00b'}, 'repository'),
    action('delete-digest-short', 'delete', {'image': 'bad/seed@sha256:1234'}, 'image'),
    action('delete-empty', 'delete', {'image': '  '}, 'image'),
    action('rmi-option-like', 'rmi', {'image': '-rf'}, 'image'),
    action('export-option-like', 'export', {'images': '--all'}, 'images'),
    action('export-relative-path', 'export', {'images': 'bad/seed:1.0', 'path': 'out.tar'},
           'path'),
    action('export-platform', 'export', {'images': 'bad/seed:1.0', 'platform': 'linux/../..'},
           'platform'),
    action('import-missing', 'import', {'path': '/does/not/exist.tar'}, 'path'),
    action('import-relative', 'import', {'path': '../../etc/shadow'}, 'path'),
    action('import-not-a-tar', 'import', {'path': '/etc/hostname'}, 'path'),
    action('import-bad-repository', 'import', {'path': '/etc/hostname',
                                               'repository': 'UPPER/case'}, 'repository'),
]


@pytest.mark.parametrize('name,params,named', ACTION_CASES)
def test_a_bad_action_parameter_fails_naming_it(unit, name, params, named):
    d = unit
    result = d.run(UNIT, name, **params)
    shown = '{} {!r}'.format(result['message'], result['results'])[:MAX_MESSAGE * 2]
    assert result['status'] == 'failed', shown
    assert named in result['message'], shown
    assert len(result['message']) <= MAX_MESSAGE, shown
    assert 'Traceback' not in json.dumps(result)
    assert 'root:' not in json.dumps(result)


def test_the_same_images_afterwards(reg):
    # Runs last in the module: every value above has come and gone.
    assert reg.listing() == reg.catalog
    assert pulled_digest(reg.seed_ref) == reg.seed_digest
