"""Image actions through the runner on a real registry: push, mirror, images, delete/rmi,
garbage-collect, export, import, and bad input.

One module-scoped deployment with basic auth (the actions must authenticate by themselves)
and storage-delete=true. Sources are the upstream stand-in registries on 127.0.0.1 (plain
HTTP, one with basic auth). Digests are checked with skopeo inspect --raw against the
source's bytes; garbage collection is checked on the unit's disk.
"""
import base64
import json
import os
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from charms.layer import registry_api

from localjuju import machine as runner_machine
from tests.support.deployment import APP, free_port_pair


pytestmark = pytest.mark.functional

UNIT = APP + '/0'
PASSWORD = 'img p@ss;$(x)'
SOURCE_PASSWORD = 'up s3cret `y`'


def raw(ref, authfile=None):
    args = ['inspect', '--raw', '--tls-verify=false']
    if authfile:
        args += ['--authfile', authfile]
    out = subprocess.run(['skopeo'] + args + ['docker://' + ref], capture_output=True,
                         check=True)
    return out.stdout


def digest(data):
    return registry_api.sha256(data)


@pytest.fixture(scope='module')
def reg(deploy_factory, tmp_path_factory):
    port, debug = free_port_pair()
    d = deploy_factory(config={'registry-port': port, 'debug-port': debug,
                               'auth-basic-password': PASSWORD, 'storage-delete': True})
    d.netloc = '{}:{}'.format(d.address(), port)
    state = d.unit_status()
    assert state['current'] == 'active', d.model.status_history(UNIT)[-5:]
    d.authfile = str(tmp_path_factory.mktemp('auth') / 'auth.json')
    token = base64.b64encode('admin:{}'.format(PASSWORD).encode()).decode()
    with open(d.authfile, 'w') as f:
        json.dump({'auths': {d.netloc: {'auth': token}}}, f)
    os.chmod(d.authfile, 0o600)
    d.api = registry_api.Registry('http://' + d.netloc, 'admin', PASSWORD)
    yield d
    d.model.destroy()


def run(d, action, **params):
    result = d.run(UNIT, action, **params)
    text = json.dumps(result)
    for secret in (PASSWORD, SOURCE_PASSWORD):
        assert secret not in text, 'secret leaked into the action output'
        assert secret not in d.model.log(UNIT)
    return Result(result)


class Result(dict):
    """An action's outcome whose repr shows what an operator would read."""

    def __repr__(self):
        return 'status={} message={!r} results={!r} output={}'.format(
            self['status'], self['message'], self['results'], self['output'][-1500:])


def ours(d, path):
    return '{}/{}'.format(d.netloc, path)


def up_path(upstream, name):
    """Destination path of the old naming rule: source host (':' -> '-') kept."""
    return '{}/{}'.format(upstream.address.replace(':', '-'), name)


# --- push ------------------------------------------------------------------------------------

def test_push_multiarch_keeps_every_platform_and_digest(reg, upstream_registry, small_corpus):
    source = upstream_registry.ref('test/multiarch:1.0')
    result = run(reg, 'push', image=source, pull=True)
    assert result['status'] == 'completed', result
    dest = ours(reg, up_path(upstream_registry, 'test/multiarch:1.0'))
    assert result['results']['destination'] == dest
    expected = raw(source)
    assert result['results']['digest'] == digest(expected) == \
        small_corpus.entry('test/multiarch').digest
    assert raw(dest, reg.authfile) == expected
    for entry in json.loads(expected)['manifests']:
        repo = dest.rsplit(':', 1)[0]
        assert digest(raw('{}@{}'.format(repo, entry['digest']), reg.authfile)) == \
            entry['digest']
    assert result['results']['platforms'] == 'linux/amd64,linux/arm64/v8'


def test_push_tag_and_strip_host_with_source_credentials(reg, upstream_factory, small_corpus):
    up = upstream_factory(users={'puller': SOURCE_PASSWORD}, corpus=small_corpus)
    source = up.ref('test/multiarch-v2s2:1.0')
    result = run(reg, 'push', image=source, pull=True, username='puller',
                 password=SOURCE_PASSWORD, **{'strip-host': True})
    assert result['status'] == 'completed', result
    assert result['results']['destination'] == ours(reg, 'test/multiarch-v2s2:1.0')
    expected = small_corpus.entry('test/multiarch-v2s2').digest
    assert digest(raw(ours(reg, 'test/multiarch-v2s2:1.0'), reg.authfile)) == expected
    result = run(reg, 'push', image=up.ref('test/app-b:1.0'), pull=True, username='puller',
                 password=SOURCE_PASSWORD, tag=ours(reg, 'renamed/app:v1'))
    assert result['status'] == 'completed', result
    assert digest(raw(ours(reg, 'renamed/app:v1'), reg.authfile)) == \
        small_corpus.entry('test/app-b').digest
    bad = run(reg, 'push', image=up.ref('test/app-b:1.0'), pull=True, username='puller',
              password='wrong-' + SOURCE_PASSWORD)
    assert bad['status'] == 'failed' and 'authentication' in bad['message'], bad


def test_push_from_the_units_docker_engine(reg):
    image_id = reg.docker(UNIT, 'image', 'inspect', '--format', '{{.Id}}', 'registry:2').strip()
    result = run(reg, 'push', image='registry:2', tag='engine/registry:2')
    assert result['status'] == 'completed', result
    assert result['results']['source'] == 'docker-daemon:registry:2'
    manifest = json.loads(raw(ours(reg, 'engine/registry:2'), reg.authfile))
    assert manifest['config']['digest'] == image_id
    assert digest(raw(ours(reg, 'engine/registry:2'), reg.authfile)) == \
        result['results']['digest']


# --- mirror ----------------------------------------------------------------------------------

def test_mirror_ck_list_parallel_skips_present_and_reports_failures(
        reg, upstream_registry, small_corpus, tmp_path):
    up = upstream_registry.address
    listing = tmp_path / 'container-images.txt'
    listing.write_text(
        'v1.98-static: {0}/test/old:1.0\n'
        'v1.99-static: {0}/test/app-a:1.0 {0}/test/base:1.0  {0}/test/missing:1.0\n'
        'v1.99-upstream: {0}/test/multiarch:1.0 {0}/test/many-layers:1.0 '
        '{0}/test/legacy-v2s2:1.0\n'.format(up))
    os.chmod(tmp_path, 0o755)
    result = run(reg, 'mirror', file=str(listing), sections='v1.99-*', prefix='mirror',
                 parallel=3)
    assert result['status'] == 'failed', result
    res = result['results']
    assert res['summary'].startswith('5 copied, 0 skipped, 1 failed of 6 images'), res
    assert 'test/missing:1.0' in res['failed'] and 'test/old' not in json.dumps(res)
    assert any('[6/6]' in line for line in result['log']), result['log']
    for repo in ('test/app-a', 'test/base', 'test/multiarch', 'test/many-layers',
                 'test/legacy-v2s2'):
        dest = ours(reg, 'mirror/{}/{}:1.0'.format(up.replace(':', '-'), repo))
        assert digest(raw(dest, reg.authfile)) == small_corpus.entry(repo).digest, repo
    again = run(reg, 'mirror', images='{0}/test/app-a:1.0,{0}/test/multiarch:1.0'.format(up),
                prefix='mirror')
    assert again['status'] == 'completed', again
    assert again['results']['summary'].startswith('0 copied, 2 skipped, 0 failed'), again


# --- images ----------------------------------------------------------------------------------

def test_images_follows_pagination_and_reports_platforms(reg, small_corpus, upstream_registry):
    # 60 repositories (6 catalog pages of 10) made by cross-repository mounts of one small
    # image (each request costs a bcrypt check on the registry: in parallel). The benchmark
    # times 5,000.
    source = registry_api.Registry(upstream_registry.url)
    _, media_type, data = source.manifest('test/base', '1.0')
    manifest = json.loads(data)
    base = 'test/base'
    run(reg, 'push', image=upstream_registry.ref('test/base:1.0'), tag='page/seed:1.0',
        pull=True)

    def make(i):
        repo = 'page/r{:03d}'.format(i)
        for blob in [manifest['config']] + manifest['layers']:
            assert reg.api.mount_blob(repo, blob['digest'], 'page/seed') is True
        reg.api.put_manifest(repo, 'v1', media_type, data)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(make, range(60)))
    result = run(reg, 'images', repository='page/r*', **{'page-size': 10})
    assert result['status'] == 'completed', result
    rows = json.loads(result['results']['json'])
    assert len(rows) == 60 and result['results']['repositories'] == '60'
    assert {r['repository'] for r in rows} == {'page/r{:03d}'.format(i) for i in range(60)}
    assert all(r['digest'] == small_corpus.entry(base).digest for r in rows)
    multi = run(reg, 'images', repository='*/test/multiarch', tag='1.*')
    rows = json.loads(multi['results']['json'])
    assert rows and all(r['platforms'] == ['linux/amd64', 'linux/arm64/v8'] for r in rows)
    assert all(r['size'] > 0 for r in rows)
    assert 'linux/amd64,linux/arm64/v8' in multi['results']['text']


# --- delete, rmi, garbage-collect --------------------------------------------------------------

def storage_bytes(d):
    out = d.on_machine(UNIT, 'find', '/srv/registry/docker/registry/v2/blobs', '-name', 'data',
                       '-type', 'f', '-printf', '%s\n').stdout
    return sum(int(x) for x in out.split())


def test_delete_rmi_and_garbage_collection_frees_space(reg, upstream_registry, small_corpus):
    run(reg, 'push', image=upstream_registry.ref('test/many-layers:1.0'), tag='gc/many:1.0',
        pull=True)
    run(reg, 'push', image=upstream_registry.ref('test/many-layers:1.0'), tag='gc/many:keep',
        pull=True)
    run(reg, 'push', image=upstream_registry.ref('test/multiarch:1.0'), tag='gc/multi:1.0',
        pull=True)
    # By tag only that tag goes; the manifest stays for the other tag.
    result = run(reg, 'delete', image='gc/many:1.0')
    assert result['status'] == 'completed', result
    assert 'keep' in result['results']['removed']
    assert reg.api.tags('gc/many') == ['keep']
    # rmi: the old name and parameter.
    result = run(reg, 'rmi', image=ours(reg, 'gc/many:keep'))
    assert result['status'] == 'completed', result
    assert reg.api.tags('gc/many') == []
    missing = run(reg, 'delete', image='gc/nothing:1.0')
    assert missing['status'] == 'failed' and 'not in the registry' in missing['message']
    # Other repositories still hold these layers (mirror/, test/...): drop them too, so that
    # many-layers' blobs become garbage.
    for row in json.loads(run(reg, 'images', repository='*many-layers*')['results']['json']):
        run(reg, 'delete', image='{}:{}'.format(row['repository'], row['tag']))

    before = storage_bytes(reg)
    dry = run(reg, 'garbage-collect', **{'dry-run': True})
    assert dry['status'] == 'completed', dry
    assert int(dry['results']['blobs-eligible']) >= 9
    assert int(dry['results']['bytes-eligible']) >= 8 * int(0.02 * small_corpus.total_mb *
                                                             (1 << 20))
    assert storage_bytes(reg) == before
    started = reg.docker(UNIT, 'inspect', '--format', '{{.State.StartedAt}}', 'registry')
    result = run(reg, 'garbage-collect')
    assert result['status'] == 'completed', result
    freed = int(result['results']['bytes-freed'])
    assert freed >= int(dry['results']['bytes-eligible']) * 0.99
    assert before - storage_bytes(reg) == freed
    assert reg.docker(UNIT, 'inspect', '--format', '{{.State.StartedAt}}', 'registry') != \
        started, 'the registry was not restarted'
    assert reg.unit_status()['current'] == 'active'
    # The tagged multi-arch image survives with every platform, untagged cleanup included.
    untagged = run(reg, 'garbage-collect', **{'delete-untagged': True})
    assert untagged['status'] == 'completed', untagged
    index = raw(ours(reg, 'gc/multi:1.0'), reg.authfile)
    assert digest(index) == small_corpus.entry('test/multiarch').digest
    for entry in json.loads(index)['manifests']:
        assert digest(raw(ours(reg, 'gc/multi@' + entry['digest']), reg.authfile)) == \
            entry['digest']
    with tempfile.TemporaryDirectory() as out:  # every blob of both platforms is still there
        subprocess.run(['skopeo', 'copy', '--all', '--src-tls-verify=false', '--authfile',
                        reg.authfile, 'docker://' + ours(reg, 'gc/multi:1.0'),
                        'oci:' + out + ':x'], check=True, capture_output=True)


def test_delete_needs_storage_delete(reg):
    reg.config(storage_delete=False)
    try:
        result = run(reg, 'delete', image='gc/multi:1.0')
        assert result['status'] == 'failed'
        assert 'storage-delete=true' in result['message']
    finally:
        reg.config(storage_delete=True)
    assert reg.unit_status()['current'] == 'active'


# --- export and import -------------------------------------------------------------------------

def test_export_oci_then_import_keeps_digests(reg, upstream_registry, small_corpus):
    run(reg, 'push', image=upstream_registry.ref('test/multiarch:1.0'), tag='exp/multi:1.0',
        pull=True)
    run(reg, 'push', image=upstream_registry.ref('test/app-a:1.0'), tag='exp/app:1.0',
        pull=True)
    path = '/srv/exp-{}.tar'.format(int(time.time()))
    result = run(reg, 'export', images='exp/multi:1.0 exp/app', path=path)
    assert result['status'] == 'completed', result
    assert int(result['results']['bytes']) > 0
    result = run(reg, 'import', path=path, prefix='restored')
    assert result['status'] == 'completed', result
    assert digest(raw(ours(reg, 'restored/exp/multi:1.0'), reg.authfile)) == \
        small_corpus.entry('test/multiarch').digest
    assert digest(raw(ours(reg, 'restored/exp/app:1.0'), reg.authfile)) == \
        small_corpus.entry('test/app-a').digest
    again = run(reg, 'export', images='exp/app', path=path)
    assert again['status'] == 'failed' and 'already exists' in again['message']


def test_export_docker_archive_loads_and_imports(reg):
    path = '/srv/exp-docker-{}.tar'.format(int(time.time()))
    result = run(reg, 'export', images='exp/multi:1.0', path=path, format='docker-archive',
                 platform='linux/arm64/v8')
    assert result['status'] == 'completed', result
    loaded = reg.on_machine(UNIT, 'docker', 'load', '-i', path).stdout
    assert 'exp/multi:1.0' in loaded, loaded
    arch = reg.docker(UNIT, 'image', 'inspect', '--format', '{{.Architecture}}',
                      'exp/multi:1.0').strip()
    assert arch == 'arm64'
    saved = '/srv/saved-{}.tar'.format(int(time.time()))
    reg.on_machine(UNIT, 'docker', 'save', '-o', saved, 'exp/multi:1.0')
    result = run(reg, 'import', path=saved, prefix='fromsave')
    assert result['status'] == 'completed', result
    manifest = json.loads(raw(ours(reg, 'fromsave/exp/multi:1.0'), reg.authfile))
    image_id = reg.docker(UNIT, 'image', 'inspect', '--format', '{{.Id}}',
                          'exp/multi:1.0').strip()
    assert manifest['config']['digest'] == image_id


# --- bad input, lock, registry down ------------------------------------------------------------

@pytest.mark.parametrize('image', ['foo;rm -rf /', '$(reboot)', 'Upper:1', 'a b',
                                   'repo@sha256:1234'])
def test_invalid_references_fail_clearly(reg, image):
    result = run(reg, 'push', image=image)
    assert result['status'] == 'failed', result
    assert 'Traceback' not in result['output'] and 'invalid' in result['message'].lower()


def test_missing_image_and_bad_params(reg, upstream_registry):
    missing = run(reg, 'push', image=upstream_registry.ref('test/nope:1.0'), pull=True)
    assert missing['status'] == 'failed' and 'HTTP 404' in missing['message'], missing
    no_file = run(reg, 'mirror', file='/does/not/exist')
    assert no_file['status'] == 'failed' and 'does not exist' in no_file['message']
    not_tar = run(reg, 'import', path='/etc/hostname')
    assert not_tar['status'] == 'failed' and 'tar' in not_tar['message']
    for result in (missing, no_file, not_tar):
        assert 'Traceback' not in result['output'], result


def test_mirror_never_echoes_a_file_that_is_not_an_image_list(reg, tmp_path):
    # A docker config.json: its lines must not reach the results, the message or the log.
    secret = 'YWRtaW46c2VjcmV0LXZhbHVl'
    listing = tmp_path / 'config.json'
    listing.write_text('{\n  "auths": {\n    "r.io": {"auth": "%s"}\n  }\n}\n' % secret)
    os.chmod(tmp_path, 0o755)
    result = run(reg, 'mirror', file=str(listing))
    assert result['status'] == 'failed' and 'is not an image list' in result['message'], result
    assert secret not in json.dumps(result) and secret not in reg.model.log(UNIT)
    secrets = run(reg, 'mirror', file='/etc/ssh/ssh_host_ed25519_key')
    assert secrets['status'] == 'failed', secrets
    assert 'holds secrets' in secrets['message'], secrets


def test_mutating_actions_take_a_lock(reg, upstream_registry):
    holder = subprocess.Popen(runner_machine.nsenter_argv(reg.holder_pid(UNIT)) + [
        'flock', '/run/docker-registry-images.lock', 'sleep', '60'], start_new_session=True)
    try:
        time.sleep(1)
        result = run(reg, 'push', image=upstream_registry.ref('test/base:1.0'), pull=True)
        assert result['status'] == 'failed' and result['message'].startswith('Busy'), result
        listing = run(reg, 'images', repository='gc/*')  # read-only actions still run
        assert listing['status'] == 'completed'
    finally:
        os.killpg(holder.pid, signal.SIGKILL)  # flock and the sleep that holds the lock
        holder.wait()
    result = run(reg, 'push', image=upstream_registry.ref('test/base:1.0'), pull=True)
    assert result['status'] == 'completed', result


def test_registry_down_fails_clearly(reg):
    assert run(reg, 'stop')['status'] == 'completed'
    try:
        result = run(reg, 'images')
        assert result['status'] == 'failed' and 'cannot reach' in result['message'], result
        result = run(reg, 'garbage-collect')
        assert result['status'] == 'failed' and 'stopped' in result['message'], result
    finally:
        assert run(reg, 'start')['status'] == 'completed'
