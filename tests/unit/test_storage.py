"""Storage backends and registry modes: what the registry is told, and what the status says."""
import pytest

from charms.layer import registry_config, registry_storage
from charms.layer.registry_validation import validate
from tests.support.registry_testlib import run, with_options

S3 = {'storage-s3-bucket': 'images', 'storage-s3-region': 'us-east-1',
      'storage-s3-accesskey': 'AKIA', 'storage-s3-secretkey': 'secret'}
MINIO = 'http://minio.example.com:9000'


# --- S3 signature version -------------------------------------------------------------------

@pytest.mark.parametrize('endpoint,skip_v4,v4auth', [
    # Amazon S3 only accepts v4, and the registry refuses to start there without it
    (None, True, True),
    (None, False, True),
    ('https://s3.amazonaws.com', True, True),
    ('https://s3.eu-west-1.amazonaws.com', True, True),
    # S3-compatible services: the option decides
    (MINIO, True, False),
    (MINIO, False, True),
])
def test_v4auth_follows_skip_v4_auth_except_on_amazon(endpoint, skip_v4, v4auth):
    config = with_options(S3, **{'storage-s3-regionendpoint': endpoint,
                                 'storage-s3-skip-v4-auth': skip_v4})
    r = run(config)
    assert r.problems == []
    assert r.registry['storage']['s3']['v4auth'] is v4auth


def test_s3_renders_driver_parameter_names():
    r = run(with_options(S3, **{'storage-s3-regionendpoint': MINIO,
                                'storage-s3-skip-verify': True,
                                'storage-s3-objectacl': 'bucket-owner-full-control'}))
    s3 = r.registry['storage']['s3']
    # the names the s3 driver reads; the old charm wrote skip-verify/skip-v4-auth/no ACL
    assert s3['skipverify'] is True
    assert s3['objectacl'] == 'bucket-owner-full-control'
    assert s3['regionendpoint'] == MINIO
    assert not any('-' in key for key in s3)


def test_object_storage_mounts_no_data_directory():
    r = run(with_options(S3))
    assert '/srv/registry:/var/lib/registry' not in r.args
    assert registry_config.shares_storage(with_options(S3))
    assert not registry_config.shares_storage(with_options())


# --- Swift ------------------------------------------------------------------------------------

def test_swift_renders_every_option():
    r = run(with_options({
        'storage-swift-authurl': 'https://keystone.example.com:5000/v3',
        'storage-swift-username': 'registry', 'storage-swift-password': 'pw: "#x',
        'storage-swift-region': 'RegionOne', 'storage-swift-tenant': 'images',
        'storage-swift-domain': 'Default', 'storage-swift-container': 'registry-blobs'}))
    assert r.problems == []
    assert r.registry['storage'] == {
        'swift': {'authurl': 'https://keystone.example.com:5000/v3', 'username': 'registry',
                  'password': 'pw: "#x', 'region': 'RegionOne', 'tenant': 'images',
                  'domain': 'Default', 'container': 'registry-blobs'},
        'cache': {'blobdescriptor': 'inmemory'}, 'delete': {'enabled': False},
        'redirect': {'disable': True}, 'maintenance': {'readonly': {'enabled': False}}}
    assert '/srv/registry:/var/lib/registry' not in r.args


def test_swift_password_only_in_the_private_config_file():
    r = run(with_options({'storage-swift-authurl': 'https://keystone.example.com/v3',
                          'storage-swift-username': 'u', 'storage-swift-password': 'SWIFTPW'}))
    holders = [path for path, f in r.files.items() if b'SWIFTPW' in f.content]
    assert holders == ['/etc/docker/registry/config.yml']
    assert r.files['/etc/docker/registry/config.yml'].mode == 0o600
    assert not any('SWIFTPW' in arg for arg in r.args)


# --- pull-through cache ---------------------------------------------------------------------

CACHE = {'cache-remoteurl': 'https://upstream.example.com', 'cache-username': 'mirror',
         'cache-password': 'CACHEPW', 'cache-ttl': '72h'}


def test_cache_ttl_rendered_for_distribution_3():
    config = with_options(CACHE)
    facts = registry_config.Facts('', 'secret', None, True)
    context = registry_config.registry_context(config, facts)
    assert context['proxy'] == {'remoteurl': 'https://upstream.example.com',
                                'username': 'mirror', 'password': 'CACHEPW', 'ttl': '72h'}
    assert validate(config, distribution3=True) == []


def test_cache_ttl_zero_means_never_expire_and_is_rendered():
    config = with_options(CACHE, **{'cache-ttl': '0'})
    context = registry_config.registry_context(config, registry_config.Facts('', 's', None, True))
    assert context['proxy']['ttl'] == '0'


def test_cache_ttl_never_rendered_for_2_8():
    config = with_options(CACHE)
    context = registry_config.registry_context(config, registry_config.Facts('', 's', None, False))
    assert context['proxy']['ttl'] is None
    assert [p.option for p in validate(config)] == ['cache-ttl']


def test_cache_without_ttl_renders_no_ttl():
    r = run(with_options(CACHE, **{'cache-ttl': ''}))
    assert r.problems == []
    assert r.registry['proxy'] == {'remoteurl': 'https://upstream.example.com',
                                   'username': 'mirror', 'password': 'CACHEPW'}
    assert b'CACHEPW' not in r.files['/etc/docker/registry/registry.env'].content


def test_cache_url_with_credentials_is_refused():
    problems = validate(with_options({'cache-remoteurl': 'https://u:pw@upstream.example.com'}))
    assert [p.option for p in problems] == ['cache-remoteurl']
    assert 'pw' not in problems[0].message


# --- modes ------------------------------------------------------------------------------------

def test_modes_render_where_the_registry_reads_them():
    r = run(with_options({'storage-cache': 'disabled', 'storage-delete': True,
                          'storage-read-only': True, 'storage-redirect-disable': False,
                          'prometheus-metrics': True, 'debug-port': 5501}))
    storage = r.registry['storage']
    assert 'cache' not in storage
    assert storage['delete'] == {'enabled': True}
    assert storage['maintenance'] == {'readonly': {'enabled': True}}
    assert storage['redirect'] == {'disable': False}
    assert r.registry['http']['debug'] == {'addr': '192.0.2.3:5501',
                                           'prometheus': {'enabled': True, 'path': '/metrics'}}


def test_proxies_go_to_the_env_file_with_no_proxy_for_the_unit():
    r = run(with_options({'registry-http-proxy': 'http://proxy.example.com:3128',
                          'registry-https-proxy': 'http://proxy.example.com:3129'}))
    env = dict(line.split('=', 1) for line in r.env.splitlines())
    assert env['HTTP_PROXY'] == env['http_proxy'] == 'http://proxy.example.com:3128'
    assert env['HTTPS_PROXY'] == env['https_proxy'] == 'http://proxy.example.com:3129'
    assert env['NO_PROXY'] == env['no_proxy']
    assert {'localhost', '127.0.0.1', '192.0.2.3'} <= set(env['NO_PROXY'].split(','))
    assert r.files['/etc/docker/registry/registry.env'].mode == 0o600
    assert not any('proxy.example.com' in arg for arg in r.args)


# --- status notes -----------------------------------------------------------------------------

def notes(free=0.5, shares=False, **options):
    watched = [] if shares else [('/srv/registry', free)]
    return registry_storage.status_notes(with_options(options), watched)


def test_no_notes_by_default():
    assert notes() == []


def test_cache_note_names_the_upstream():
    assert notes(**{'cache-remoteurl': 'https://up.example.com'}) == [
        'pull-through cache of https://up.example.com']


@pytest.mark.parametrize('url', ['https://up.example.com:8443/?token=SeCrEt',
                                 'https://up.example.com:8443/v2/SeCrEt?a=b#SeCrEt'])
def test_cache_note_never_shows_a_path_or_query(url):
    assert notes(**{'cache-remoteurl': url}) == [
        'pull-through cache of https://up.example.com:8443']


def test_docker_data_root_is_watched_too():
    watched = [('/srv/registry', 0.5), ('/var/lib/docker', 0.03)]
    assert registry_storage.status_notes(with_options(), watched) == [
        'WARNING: 3% free space left on /var/lib/docker']


def test_an_unreachable_storage_endpoint_is_a_warning():
    config = with_options(S3, **{'storage-s3-regionendpoint': 'http://127.0.0.1:1/?x=y'})
    endpoint = registry_storage.storage_endpoint(config)
    assert endpoint == ('storage-s3-regionendpoint', 'http://127.0.0.1:1/?x=y')
    reason = registry_storage.unreachable(endpoint[1])
    assert reason  # nothing listens on port 1
    assert registry_storage.status_notes(config, [], (endpoint[0], reason)) == [
        'WARNING: storage-s3-regionendpoint http://127.0.0.1:1 unreachable ({}); pushes and '
        'pulls fail'.format(reason)]


def test_a_listening_storage_endpoint_is_reachable():
    import socket
    with socket.socket() as server:
        server.bind(('127.0.0.1', 0))
        server.listen()
        assert registry_storage.unreachable(
            'http://127.0.0.1:{}'.format(server.getsockname()[1])) is None


@pytest.mark.parametrize('options', [{}, dict(S3), dict(S3, **{
    'storage-s3-regionendpoint': MINIO, 'registry-https-proxy': 'http://p:3128'})])
def test_endpoints_not_checked(options):
    # Amazon's own endpoint depends on the region; behind a proxy only the registry knows
    assert registry_storage.storage_endpoint(with_options(options)) is None


def test_read_only_note():
    assert notes(**{'storage-read-only': True}) == ['read-only']


@pytest.mark.parametrize('free,warned', [(0.5, False), (0.10, False), (0.099, True),
                                         (0.0, True), (None, False)])
def test_free_space_warning_under_ten_percent(free, warned):
    got = notes(free=free)
    assert bool(got) == warned
    if warned:
        assert got == ['WARNING: {:.0%} free space left on /srv/registry'.format(free)]


def test_no_free_space_warning_with_object_storage():
    assert notes(free=0.01, shares=True) == []


def test_notes_keep_a_stable_order():
    assert notes(free=0.05, **{'cache-remoteurl': 'https://up.example.com',
                               'storage-read-only': True}) == [
        'pull-through cache of https://up.example.com', 'read-only',
        'WARNING: 5% free space left on /srv/registry']


def test_free_fraction_of_a_real_and_a_missing_path(tmp_path):
    fraction = registry_storage.free_fraction(str(tmp_path))
    assert 0 <= fraction <= 1
    assert registry_storage.free_fraction(str(tmp_path / 'missing')) is None
