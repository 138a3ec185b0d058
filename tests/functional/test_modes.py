"""Registry modes through the local runner on a real engine: metrics, read-only, delete, the
blob descriptor cache, the free-space warning, and the pull-through cache reached through
registry-http-proxy, on registry 2.8 and on a 3.x-layout image.

One single-unit deployment (filesystem storage) is reconfigured test after test; the tests
run in file order and each leaves the deployment active on its base configuration, except
the last group, which turns it into a pull-through cache for good.
"""
import json
import re
import socket
import urllib.error
import urllib.request

import pytest

from tests.support.clients import http_get, pulled_digest, skopeo
from tests.support.deployment import APP, port_free
from tests.support.forward_proxy import ForwardProxy
from tests.support.upstream import UpstreamRegistry, free_port

pytestmark = pytest.mark.functional

UNIT = APP + '/0'
NO_TLS = ('--src-tls-verify=false', '--dest-tls-verify=false')
CACHE_USER, CACHE_PASSWORD = 'mirror', 'c@che: "pw" #1'


def workload(d):
    s = d.unit_status(UNIT)
    return s['current'], s['message']


def assert_ready(d, *notes):
    state, message = workload(d)
    assert state == 'active', d.model.status_history(UNIT)[-6:]
    assert message == '; '.join(['Ready at {} (http)'.format(d.netloc)] + list(notes)), message


def copy(source, dest, check=True, creds=None):
    extra = ('--src-creds=' + creds,) if creds else ()
    return skopeo('copy', *NO_TLS, *extra, 'docker://' + source, 'docker://' + dest,
                  check=check)


def container_log(d):
    out = d.on_machine(UNIT, 'docker', 'logs', 'registry')
    return out.stdout + out.stderr


def container_id(d):
    return d.container_id(UNIT)


def reset(d, *options):
    d.model.config(APP, reset=list(options))


@pytest.fixture(scope='module')
def upstream(small_corpus, tmp_path_factory):
    """A registry with the corpus, on a fixed port so that it can come back after a stop.

    No auth: Distribution's pull-through cache hands cache-username/cache-password only to
    token (Bearer) authentication, never to a basic-auth upstream.
    """
    reg = UpstreamRegistry(port=free_port(), workdir=tmp_path_factory.mktemp('modes-upstream'))
    reg.start()
    reg.pushed = reg.push_corpus(small_corpus)
    yield reg
    reg.stop()


@pytest.fixture(scope='module')
def d(seeded_deploy, upstream):
    dep = seeded_deploy(upstream, 'modes')
    yield dep
    dep.model.destroy()


@pytest.fixture
def registry(d):
    assert_ready(d)
    return d


# --- metrics ------------------------------------------------------------------------------------

def test_metrics_off_by_default_nothing_on_debug_port(registry):
    assert port_free(registry.debug_port)
    assert not answers('{}:{}'.format(registry.address(), registry.debug_port))


def answers(netloc):
    host, port = netloc.rsplit(':', 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        return True
    except OSError:
        return False


def test_metrics_scraped_from_debug_port_then_gone_when_off(registry):
    d = registry
    d.config(prometheus_metrics=True)
    try:
        assert_ready(d)
        # On the unit's address only (the debug server serves pprof too).
        url = 'http://{}:{}/metrics'.format(d.address(), d.debug_port)
        before = requests_counted(url)
        for _ in range(3):
            assert http_get('http://{}/v2/'.format(d.netloc))[0] == 200
        assert requests_counted(url) >= before + 3
        ports = d.model.status()['applications'][APP]['units'][UNIT]['open-ports']
        assert '{}/tcp'.format(d.debug_port) in ports
    finally:
        reset(d, 'prometheus-metrics')
    assert_ready(d)
    assert port_free(d.debug_port)
    ports = d.model.status()['applications'][APP]['units'][UNIT]['open-ports']
    assert ports == ['{}/tcp'.format(d.port)]


def requests_counted(url):
    """registry_http_requests_total of GET /v2/ (the 'base' handler) from /metrics."""
    status, body = http_get(url)
    assert status == 200, status
    pattern = re.compile(r'^registry_http_requests_total\{(?=[^}]*handler="base")'
                         r'(?=[^}]*code="200")(?=[^}]*method="get")[^}]*\} (\S+)$', re.M)
    found = pattern.findall(body.decode())
    return sum(float(v) for v in found)


# --- read-only and delete -----------------------------------------------------------------------

def test_read_only_refuses_pushes_serves_pulls_and_says_so(registry, upstream):
    d = registry
    assert pulled_digest(d.seed_ref) == d.seed_digest
    d.config(storage_read_only=True)
    try:
        assert_ready(d, 'read-only')
        refused = copy(upstream.ref('test/app-a:1.0'), d.netloc + '/modes/ro:1.0', check=False,
                       creds=upstream.creds)
        assert refused.returncode != 0
        status, _ = http_get('http://{}/v2/modes/ro/tags/list'.format(d.netloc))
        assert status == 404
        assert pulled_digest(d.seed_ref) == d.seed_digest
    finally:
        reset(d, 'storage-read-only')
    assert_ready(d)
    copy(upstream.ref('test/app-a:1.0'), d.netloc + '/modes/ro:1.0', creds=upstream.creds)


def delete_manifest(d, repo, digest):
    request = urllib.request.Request('http://{}/v2/{}/manifests/{}'.format(
        d.netloc, repo, digest), method='DELETE')
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_delete_only_when_storage_delete(registry, upstream, small_corpus):
    d = registry
    ref = d.netloc + '/modes/deleted:1.0'
    copy(upstream.ref('test/app-b:1.0'), ref, creds=upstream.creds)
    digest = small_corpus.entry('test/app-b').digest
    assert delete_manifest(d, 'modes/deleted', digest) == 405
    d.config(storage_delete=True)
    try:
        assert_ready(d)
        assert delete_manifest(d, 'modes/deleted', digest) == 202
        status, _ = http_get('http://{}/v2/modes/deleted/manifests/{}'.format(d.netloc, digest))
        assert status == 404
    finally:
        reset(d, 'storage-delete')
    assert_ready(d)


def test_blob_descriptor_cache_follows_storage_cache(registry):
    d = registry
    assert 'using inmemory blob descriptor cache' in container_log(d)
    d.config(storage_cache='disabled')
    try:
        assert_ready(d)
        log = container_log(d)
        assert 'blob descriptor cache' not in log, log[-2000:]
        assert pulled_digest(d.seed_ref) == d.seed_digest
    finally:
        reset(d, 'storage-cache')
    assert_ready(d)


def test_bad_storage_cache_blocks_and_keeps_serving(registry):
    d = registry
    before = container_id(d)
    d.config(storage_cache='redis')
    try:
        state, message = workload(d)
        assert state == 'blocked'
        assert message == 'Invalid config: storage-cache: must be one of inmemory, disabled'
        assert container_id(d) == before
        assert pulled_digest(d.seed_ref) == d.seed_digest
    finally:
        reset(d, 'storage-cache')
    assert_ready(d)
    assert container_id(d) == before


# --- free space -----------------------------------------------------------------------------

def test_free_space_warning_under_ten_percent(registry):
    """A small filesystem over the data directory, filled past 90%, warns on update-status."""
    d = registry
    d.on_machine(UNIT, 'mount', '-t', 'tmpfs', '-o', 'size=10m', 'tmpfs', '/srv/registry')
    try:
        # 9.5 of 10 MiB: 5% left
        d.on_machine(UNIT, 'dd', 'if=/dev/zero', 'of=/srv/registry/filler', 'bs=512K',
                     'count=19', 'status=none')
        d.model.update_status()
        state, message = workload(d)
        assert state == 'active'
        match = re.search(r'; WARNING: (\d+)% free space left on /srv/registry$', message)
        assert match and int(match.group(1)) < 10, message
    finally:
        d.on_machine(UNIT, 'umount', '/srv/registry')
    d.model.update_status()
    assert_ready(d)


# --- pull-through cache through the HTTP proxy, then a 3.x image --------------------------------

@pytest.fixture(scope='module')
def forward_proxy():
    with ForwardProxy() as proxy:
        yield proxy


def test_pull_through_cache_via_proxy(registry, upstream, forward_proxy, small_corpus):
    d = registry
    # Nothing resolves this name: the cache reaches the upstream only through the proxy.
    remote = 'http://upstream.invalid:{}'.format(upstream.port)
    d.config(cache_remoteurl=remote, cache_username=CACHE_USER, cache_password=CACHE_PASSWORD,
             registry_http_proxy=forward_proxy.url)
    assert_ready(d, 'pull-through cache of ' + remote)
    d.cache_remote = remote

    env = json.loads(d.docker(UNIT, 'inspect', '--format', '{{json .Config.Env}}', 'registry'))
    env = dict(e.split('=', 1) for e in env)
    assert env['HTTP_PROXY'] == forward_proxy.url
    assert {'localhost', '127.0.0.1', d.address()} <= set(env['NO_PROXY'].split(','))

    ref = d.netloc + '/test/app-a:1.0'
    expected = small_corpus.entry('test/app-a').digest
    forward_proxy.requested.clear()
    assert pulled_digest(ref) == expected
    fetched = [r for r in forward_proxy.requested if remote + '/v2/test/app-a/' in r]
    assert any('/manifests/' in r for r in fetched), forward_proxy.requested
    assert any('/blobs/' in r for r in fetched), forward_proxy.requested

    refused = copy(upstream.ref('test/base:1.0'), d.netloc + '/test/pushed:1.0', check=False,
                   creds=upstream.creds)
    assert refused.returncode != 0

    # the cache password stays out of status, docker's view of the container and hook logs
    assert CACHE_PASSWORD not in json.dumps(d.model.status())
    assert CACHE_PASSWORD not in d.docker(UNIT, 'inspect', 'registry')
    assert CACHE_PASSWORD not in d.model.log(UNIT)
    mode = d.on_machine(UNIT, 'stat', '-c', '%a', '/etc/docker/registry/config.yml').stdout
    assert mode.strip() == '600'


def test_cache_serves_with_upstream_stopped(d, upstream, small_corpus):
    assert_ready(d, 'pull-through cache of ' + d.cache_remote)
    ref = d.netloc + '/test/app-a:1.0'
    expected = small_corpus.entry('test/app-a').digest
    upstream.stop()
    try:
        assert pulled_digest(ref) == expected
        assert pulled_digest(d.netloc + '/test/app-a@' + expected) == expected
        # cache-ttl needs a 3.x image: blocked, and the cache keeps serving
        d.config(cache_ttl='72h')
        state, message = workload(d)
        assert (state, message) == ('blocked', 'Invalid config: cache-ttl: needs a 3.x '
                                    'registry-image (registry 2.8 always keeps cached '
                                    'content for 7 days)')
        assert pulled_digest(ref) == expected
    finally:
        upstream.start()


def test_distribution3_image_reads_config_elsewhere_with_cache_ttl(
        d, registry3_image_archive, small_corpus):
    # cache-ttl=72h is still set from the previous test; a 3.x image accepts it.
    d.on_machine(UNIT, 'docker', 'load', '-i', str(registry3_image_archive))
    d.config(registry_image='registry:3')
    assert_ready(d, 'pull-through cache of ' + d.cache_remote)
    mounts = json.loads(d.docker(UNIT, 'inspect', '--format', '{{json .Mounts}}', 'registry'))
    assert any(m['Destination'] == '/etc/distribution/config.yml' for m in mounts), mounts
    args = json.loads(d.docker(UNIT, 'inspect', '--format', '{{json .Args}}', 'registry'))
    assert args == ['serve', '/etc/distribution/config.yml']
    config = d.on_machine(UNIT, 'cat', '/etc/docker/registry/config.yml').stdout
    assert 'ttl: "72h"' in config
    assert pulled_digest(d.netloc + '/test/app-a:1.0') == small_corpus.entry('test/app-a').digest


def test_swift_blocked_on_distribution3(d):
    before = container_id(d)
    d.config(storage_swift_authurl='http://127.0.0.1:1/v3', storage_swift_username='u',
             storage_swift_password='SWIFT-SECRET')
    try:
        state, message = workload(d)
        assert state == 'blocked'
        assert message == ('Invalid config: storage-swift-authurl: Swift storage needs a 2.x '
                           'registry-image (Distribution 3 dropped the swift driver)')
        assert container_id(d) == before
        assert 'SWIFT-SECRET' not in d.model.log(UNIT)
    finally:
        reset(d, 'storage-swift-authurl', 'storage-swift-username', 'storage-swift-password')
    assert_ready(d, 'pull-through cache of ' + d.cache_remote)
