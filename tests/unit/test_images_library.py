"""Copy, inventory, delete and garbage-collection helpers with an in-memory registry, and
the action plumbing (lock, parameters, results, failures) with hookenv mocked."""
import hashlib
import http.client
import io
import json
import os
import threading
from unittest import mock

import pytest

from charms.layer import action_support, registry_copy, registry_images, registry_refs
from charms.layer import registry_paths
from charms.layer import registry_api
from charms.layer.registry_api import RegistryError, _challenge, _next_link

OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'


def sha(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


class FakeRegistry:
    """Registry API in memory: repos -> {'blobs': set, 'manifests': {digest: (type, data)},
    'tags': {tag: digest}}; blobs are global bytes."""

    def __init__(self, url='http://fake'):
        self.url = url
        self.blobs, self.repos, self.calls = {}, {}, []
        self.lock = threading.Lock()

    def repo(self, name):
        return self.repos.setdefault(name, {'blobs': set(), 'manifests': {}, 'tags': {}})

    def add_blob(self, repo, data):
        digest = sha(data)
        self.blobs[digest] = data
        self.repo(repo)['blobs'].add(digest)
        return {'mediaType': 'application/octet-stream', 'digest': digest, 'size': len(data)}

    def add_manifest(self, repo, document, media_type, tag=None):
        data = json.dumps(document).encode()
        self.repo(repo)['manifests'][sha(data)] = (media_type, data)
        if tag:
            self.repo(repo)['tags'][tag] = sha(data)
        return {'mediaType': media_type, 'digest': sha(data), 'size': len(data)}

    # API used by the library
    def manifest(self, repo, reference):
        r = self.repos.get(repo)
        digest = reference if reference.startswith('sha256:') else \
            (r or {}).get('tags', {}).get(reference)
        if not r or digest not in r['manifests']:
            raise RegistryError('not found', 404)
        media_type, data = r['manifests'][digest]
        return digest, media_type, data

    def manifest_digest(self, repo, reference):
        try:
            return self.manifest(repo, reference)[0]
        except RegistryError:
            return None

    def put_manifest(self, repo, reference, media_type, data):
        self.calls.append(('put', repo, reference))
        r = self.repo(repo)
        r['manifests'][sha(data)] = (media_type, data)
        if not reference.startswith('sha256:'):
            r['tags'][reference] = sha(data)
        return sha(data)

    def delete_manifest(self, repo, digest):
        self.calls.append(('delete', repo, digest))
        r = self.repo(repo)
        del r['manifests'][digest]
        r['tags'] = {t: d for t, d in r['tags'].items() if d != digest}

    def has_blob(self, repo, digest):
        return digest in self.repo(repo)['blobs']

    def open_blob(self, repo, digest):
        assert digest in self.repo(repo)['blobs']
        return io.BytesIO(self.blobs[digest])

    def blob(self, repo, digest):
        return self.open_blob(repo, digest).read()

    def mount_blob(self, repo, digest, from_repo):
        self.calls.append(('mount', repo, digest, from_repo))
        if digest in self.repo(from_repo)['blobs']:
            self.repo(repo)['blobs'].add(digest)
            return True
        return '/upload/1'

    def upload(self, repo, digest, size, stream, location=None):
        data = stream.read()
        assert sha(data) == digest and len(data) == size
        with self.lock:
            self.calls.append(('upload', repo, digest))
            self.blobs[digest] = data
            self.repo(repo)['blobs'].add(digest)

    def upload_chunks(self, repo, chunks):
        data = b''.join(chunks)
        self.upload(repo, sha(data), len(data), io.BytesIO(data))
        return sha(data), len(data)

    def tags(self, repo, page_size=1000):
        return sorted(self.repos.get(repo, {}).get('tags', {}))

    def catalog(self, page_size=1000):
        return sorted(self.repos)


def image(reg, repo, tag, seed, shared=b'shared-layer', arch='amd64'):
    config = reg.add_blob(repo, json.dumps({'os': 'linux', 'architecture': arch}).encode())
    layers = [reg.add_blob(repo, shared), reg.add_blob(repo, b'own-' + seed)]
    return reg.add_manifest(repo, {'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
                                   'config': config, 'layers': layers}, OCI_MANIFEST, tag)


def multiarch(reg, repo, tag):
    amd = image(reg, repo, None, b'amd', arch='amd64')
    arm = image(reg, repo, None, b'arm', arch='arm64')
    amd['platform'] = {'os': 'linux', 'architecture': 'amd64'}
    arm['platform'] = {'os': 'linux', 'architecture': 'arm64', 'variant': 'v8'}
    return reg.add_manifest(repo, {'schemaVersion': 2, 'mediaType': OCI_INDEX,
                                   'manifests': [amd, arm]}, OCI_INDEX, tag)


# --- copy ------------------------------------------------------------------------------------

def test_copy_index_byte_exact_with_every_platform():
    src, dst = FakeRegistry('http://src'), FakeRegistry('http://dst')
    index = multiarch(src, 'up/multi', '1.0')
    copier = registry_copy.Copier(dst)
    copied = copier.copy(registry_copy.RegistrySource(src, 'up/multi'), '1.0', 'm/multi', '1.0')
    copier.close()
    assert copied.digest == index['digest']
    assert copied.platforms == ['linux/amd64', 'linux/arm64/v8']
    assert dst.manifest('m/multi', '1.0')[2] == src.manifest('up/multi', '1.0')[2]
    for entry in json.loads(src.manifest('up/multi', '1.0')[2])['manifests']:
        assert dst.manifest('m/multi', entry['digest'])[2] == \
            src.manifest('up/multi', entry['digest'])[2]
    # The layer both platforms share went once.
    uploads = [c for c in dst.calls if c[0] == 'upload']
    assert len(uploads) == len({c[2] for c in uploads}) == 5


def test_copy_mounts_blobs_another_destination_repo_has_and_skips_present():
    src, dst = FakeRegistry('http://src'), FakeRegistry('http://dst')
    image(src, 'a', '1', b'a')
    image(src, 'b', '1', b'b')
    copier = registry_copy.Copier(dst)
    copier.copy(registry_copy.RegistrySource(src, 'a'), '1', 'x/a', '1')
    copier.copy(registry_copy.RegistrySource(src, 'b'), '1', 'x/b', '1')
    copier.copy(registry_copy.RegistrySource(src, 'a'), '1', 'x/a', 'again')
    copier.close()
    assert ('mount', 'x/b', sha(b'shared-layer'), 'x/a') in dst.calls
    # b's config is a's (same platform, same bytes): mounted like the shared layer.
    assert copier.stats == {'blobs-copied': 4, 'blobs-mounted': 2, 'blobs-present': 3,
                            'bytes-copied': copier.stats['bytes-copied']}


def test_a_blob_is_mounted_once_into_a_repository():
    # The registry rewrites a blob's link on every mount: a second mount into a repository
    # whose manifest is being stored (two tags of one image copied at once) failed that
    # manifest with DIGEST_INVALID.
    src, dst = FakeRegistry('http://src'), FakeRegistry('http://dst')
    image(src, 'a', '1', b'a')
    copier = registry_copy.Copier(dst)
    source = registry_copy.RegistrySource(src, 'a')
    copier.copy(source, '1', 'x/a', '1')
    copier.copy(source, '1', 'x/b', '1')
    copier.copy(source, '1', 'x/b', 'latest')
    copier.close()
    assert len([c for c in dst.calls if c[0] == 'mount' and c[1] == 'x/b']) == 3
    assert copier.stats['blobs-present'] == 3 and copier.stats['blobs-mounted'] == 3


def test_copy_inside_one_registry_mounts_from_the_source_repo():
    reg = FakeRegistry('http://same')
    image(reg, 'a', '1', b'a')
    copier = registry_copy.Copier(reg)
    copier.copy(registry_copy.RegistrySource(reg, 'a'), '1', 'renamed', '1')
    copier.close()
    assert not [c for c in reg.calls if c[0] == 'upload']
    assert len([c for c in reg.calls if c[0] == 'mount']) == 3


def test_copy_rejects_schema1_and_a_changed_digest():
    src, dst = FakeRegistry(), FakeRegistry('http://dst')
    src.add_manifest('old', {'schemaVersion': 1}, 'application/vnd.docker.distribution.'
                     'manifest.v1+prettyjws', 'v1')
    copier = registry_copy.Copier(dst)
    with pytest.raises(registry_copy.CopyError, match='schema 1'):
        copier.copy(registry_copy.RegistrySource(src, 'old'), 'v1', 'old', 'v1')
    image(src, 'a', '1', b'a')
    dst.put_manifest = lambda repo, ref, media_type, data: 'sha256:' + '0' * 64
    with pytest.raises(registry_copy.CopyError, match='instead of'):
        copier.copy(registry_copy.RegistrySource(src, 'a'), '1', 'a', '1')
    copier.close()


def desc(data, **more):
    return dict({'digest': sha(data), 'size': len(data)}, **more)


def test_blobs_of_leaves_foreign_layers():
    manifest = {'config': desc(b'c'), 'layers': [
        desc(b'l1'), desc(b'l2', urls=['https://x']),
        desc(b'l3', mediaType='application/vnd.docker.image.rootfs.foreign.diff.tar.gzip')]}
    assert [d['digest'] for d in registry_copy.blobs_of(manifest)] == [sha(b'c'), sha(b'l1')]


@pytest.mark.parametrize('layer', [
    {'digest': 'sha256:../../../etc/shadow', 'size': 1}, {'digest': sha(b'x')},
    {'digest': sha(b'x'), 'size': '1'}, 'not-a-descriptor'])
def test_malformed_descriptors_are_copy_errors(layer):
    with pytest.raises(registry_copy.CopyError, match='invalid descriptor'):
        registry_copy.blobs_of({'config': desc(b'c'), 'layers': [layer]})


def test_malformed_manifests_fail_the_copy_with_a_message():
    src, dst = FakeRegistry('http://src'), FakeRegistry('http://dst')
    src.repo('bad')['manifests'][sha(b'{')] = (OCI_MANIFEST, b'{')
    src.repo('bad')['tags']['1'] = sha(b'{')
    copier = registry_copy.Copier(dst)
    with pytest.raises(registry_copy.CopyError, match='not valid JSON'):
        copier.copy(registry_copy.RegistrySource(src, 'bad'), '1', 'bad', '1')
    copier.close()


def test_docker_archive_names_outside_the_archive_are_refused(tmp_path):
    (tmp_path / 'manifest.json').write_text(json.dumps(
        [{'Config': '../../etc/hostname', 'Layers': [], 'RepoTags': ['a:1']}]))
    entries, source = registry_copy.docker_archive_entries(str(tmp_path))
    (_, config, layers), = entries
    with pytest.raises(registry_copy.CopyError, match='outside'):
        registry_copy.push_docker_image(FakeRegistry(), source, 'a', ['1'], config, layers)


def test_archive_round_trip_oci_and_docker(tmp_path):
    reg = FakeRegistry('http://r')
    index = multiarch(reg, 'm', '1')
    plain = image(reg, 'p', '2', b'p')
    path = str(tmp_path / 'a.tar')
    writer = registry_copy.ArchiveWriter(path)
    writer.add(reg, 'm', '1')
    writer.add(reg, 'p', '2')
    writer.close()
    assert oct(os.stat(path).st_mode & 0o777) == '0o600'
    assert registry_copy.archive_kind(path) == 'oci'
    source = registry_copy.LayoutSource(path)
    names = dict(registry_copy.layout_entries(source))
    assert names['m:1']['digest'] == index['digest'] and names['p:2']['digest'] == plain['digest']
    dst = FakeRegistry('http://d')
    copier = registry_copy.Copier(dst)
    assert copier.copy(source, index['digest'], 'back/m', '1').digest == index['digest']
    copier.close()
    docker = str(tmp_path / 'd.tar')
    writer = registry_copy.ArchiveWriter(docker, 'docker-archive')
    writer.add(reg, 'm', '1', 'linux/arm64/v8')
    with pytest.raises(registry_copy.CopyError, match='has no linux/s390x'):
        writer.add(reg, 'm', '1', 'linux/s390x')
    writer.close()
    assert registry_copy.archive_kind(docker) == 'docker-archive'
    entries, source = registry_copy.docker_archive_entries(docker)
    (tags, config, layers), = entries
    copied = registry_copy.push_docker_image(dst, source, 'loaded', ['a', 'b'], config, layers)
    assert copied.platforms == ['linux/arm64']
    assert dst.tags('loaded') == ['a', 'b']
    pushed = json.loads(dst.manifest('loaded', 'a')[2])
    assert all(layer['mediaType'].endswith('tar.gzip') for layer in pushed['layers'])
    (tmp_path / 'junk').write_text('not a tar')
    with pytest.raises(registry_copy.CopyError, match='not a readable tar'):
        registry_copy.archive_kind(str(tmp_path / 'junk'))


# --- inventory and delete ----------------------------------------------------------------------

def test_inventory_rows_with_platforms_sizes_and_filters():
    reg = FakeRegistry()
    multiarch(reg, 'cdk/multi', '1.0')
    image(reg, 'cdk/plain', '2.0', b'x', arch='arm64')
    image(reg, 'other/plain', '2.0', b'y')
    rows, repos = registry_images.inventory(reg, 'cdk/*')
    assert repos == 2 and [r['repository'] for r in rows] == ['cdk/multi', 'cdk/plain']
    assert rows[0]['platforms'] == ['linux/amd64', 'linux/arm64/v8']
    assert rows[1]['platforms'] == ['linux/arm64']
    shared = len(b'shared-layer')
    assert rows[0]['size'] > shared and rows[1]['size'] > shared
    text = registry_images.inventory_text(rows)
    assert 'cdk/multi:1.0' in text and 'linux/amd64,linux/arm64/v8' in text
    assert registry_images.inventory(reg, tag='9.*')[0] == []
    assert registry_images.inventory_text([]) == 'no images'


def test_delete_by_tag_keeps_other_tags_by_digest_removes_all():
    reg = FakeRegistry()
    plain = image(reg, 'a', '1', b'a')
    reg.repo('a')['tags']['keep'] = plain['digest']
    outcome = registry_images.delete(reg, registry_refs.parse('a:1'))
    assert outcome == {'removed': None, 'kept-tags': ['keep']}
    assert reg.tags('a') == ['keep']
    outcome = registry_images.delete(reg, registry_refs.parse('a@' + plain['digest']))
    assert reg.tags('a') == [] and outcome['removed'] == plain['digest']
    with pytest.raises(RegistryError, match='not in the registry'):
        registry_images.delete(reg, registry_refs.parse('a:1'))


# --- garbage collection ------------------------------------------------------------------------

GC_OUTPUT = '''test/a
test/a: marking manifest sha256:{m}
test/a: marking blob sha256:{b}

12 blobs marked, 2 blobs and 1 manifests eligible for deletion
blob eligible for deletion: sha256:{x}
blob eligible for deletion: sha256:{y}
'''.format(m='1' * 64, b='2' * 64, x='3' * 64, y='4' * 64)


def test_parse_gc_output():
    marked, eligible, manifests = registry_images.parse_gc_output(GC_OUTPUT)
    assert marked == 12 and manifests == 1
    assert eligible == ['sha256:' + '3' * 64, 'sha256:' + '4' * 64]
    assert registry_images.parse_gc_output('') == (None, [], 0)


@pytest.mark.parametrize('entrypoint,cmd,binary', [
    (['/bin/registry'], ['serve', '/etc/docker/registry/config.yml'], '/bin/registry'),
    (['/entrypoint.sh'], ['/etc/docker/registry/config.yml'], '/bin/registry'),
    (None, ['/usr/bin/docker-registry', 'serve', 'x'], '/usr/bin/docker-registry'),
    (None, None, '/bin/registry'),
])
def test_registry_binary(entrypoint, cmd, binary):
    assert registry_images.registry_binary(entrypoint, cmd) == binary


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb' if isinstance(data, bytes) else 'w') as f:
        f.write(data)


def stored(v2, document):
    """Write a manifest blob; returns its digest."""
    data = json.dumps(document).encode()
    digest = sha(data)
    write(os.path.join(v2, 'blobs', 'sha256', digest[7:9], digest[7:], 'data'), data)
    return digest


def test_untagged_manifests_are_the_ones_a_tag_left_behind(tmp_path):
    root = str(tmp_path)
    v2 = os.path.join(root, 'docker', 'registry', 'v2')
    child_a, child_b, old_child, by_digest = (stored(v2, {'layers': [], 'n': x})
                                              for x in 'ab0d')
    index = stored(v2, {'manifests': [{'digest': child_a}, {'digest': child_b}]})
    old_index = stored(v2, {'manifests': [{'digest': old_child}, {'digest': child_a}]})
    signature = stored(v2, {'layers': [], 'subject': {'digest': index}})
    cosign = stored(v2, {'layers': [], 'n': 'cosign'})
    cosign_subject = stored(v2, {'layers': [], 'n': 'signed, untagged'})
    overwritten = stored(v2, {'layers': [], 'n': 'old 2.0'})
    repo = os.path.join(v2, 'repositories', 'lib', 'multi', '_manifests')

    def tag(name, digest, history=()):
        write(os.path.join(repo, 'tags', name, 'current', 'link'), digest)
        for d in (digest,) + tuple(history):
            write(os.path.join(repo, 'tags', name, 'index', 'sha256', d[7:], 'link'), d)

    for d in (child_a, child_b, old_child, by_digest, index, old_index, signature, cosign,
              cosign_subject, overwritten):
        write(os.path.join(repo, 'revisions', 'sha256', d[7:], 'link'), d)
    tag('1.0', index, history=[old_index])      # 1.0 moved from old_index to index
    tag('2.0', index, history=[overwritten])
    tag('sha256-{}.sig'.format(cosign_subject[7:]), cosign)  # the referrers tag schema
    # Left behind: what the moved tags named before, and the platform only the old index
    # listed. Kept: the tagged index and its platforms (child_a also in the old one), what
    # was pushed by digest, the signature with a subject, cosign's subject.
    assert registry_images.untagged_manifests(root) == {
        'lib/multi': sorted([old_index, old_child, overwritten])}
    assert registry_images.storage_usage(str(tmp_path / 'none')) == (None, None)
    registry_images.remove_manifest(root, 'lib/multi', old_index)
    assert not os.path.exists(os.path.join(repo, 'revisions', 'sha256', old_index[7:]))
    assert not os.path.exists(os.path.join(repo, 'tags', '1.0', 'index', 'sha256',
                                           old_index[7:]))
    assert os.path.exists(os.path.join(repo, 'tags', '1.0', 'current', 'link'))
    assert registry_images.blob_sizes(root, [index, 'sha256:' + '0' * 64]) == \
        os.path.getsize(os.path.join(v2, 'blobs', 'sha256', index[7:9], index[7:], 'data'))


def test_delete_untagged_looks_only_once_the_registry_is_read_only(tmp_path):
    """A multi-arch push writes its platform manifests before the index that tags them:
    looked at before read-only mode, they would be untagged, and deleted."""
    from charms.layer import registry_garbage_collect as actions
    from charms.layer.registry_status import ACTIVE, Outcome
    order = []

    def configure(progress, overrides=None):
        order.append(('configure', overrides))
        return Outcome(ACTIVE, 'Ready')

    def untagged(data_dir):
        order.append(('untagged',))
        return {'r': ['sha256:' + '1' * 64]}

    from charms.layer import registry_config, registry_juju, registry_paths
    with mock.patch.object(actions, 'is_flag_set', return_value=False), \
            mock.patch.object(actions, 'config',
                              return_value={'storage-delete': True, 'registry-name': 'r'}), \
            mock.patch.object(actions, 'show'), \
            mock.patch.object(registry_config, 'shares_storage', return_value=False), \
            mock.patch.object(registry_juju, 'container_status', return_value='running'), \
            mock.patch.object(registry_juju, 'configure', side_effect=configure), \
            mock.patch.object(registry_paths, 'HOST_DATA', str(tmp_path)), \
            mock.patch.object(actions.registry_images, 'untagged_manifests',
                              side_effect=untagged), \
            mock.patch.object(actions.registry_images, 'remove_manifest',
                              side_effect=lambda *a: order.append(('remove',) + a)), \
            mock.patch.object(actions, '_run_gc', side_effect=lambda *a: order.append(
                ('gc',)) or ''), \
            mock.patch.object(actions, 'Lock', lambda name: mock.MagicMock()), \
            mock.patch.object(actions, 'log'):
        results = actions.garbage_collect({'delete-untagged': True})
    assert order == [('configure', {'storage-read-only': True}), ('untagged',),
                     ('remove', str(tmp_path), 'r', 'sha256:' + '1' * 64), ('gc',),
                     ('configure', None)]
    assert results['untagged-manifests'] == 'r@sha256:' + '1' * 64


# --- registry_api helpers ----------------------------------------------------------------------

def test_challenge_and_pagination_links():
    assert _challenge('Bearer realm="https://a/token",service="reg",scope="repository:x:pull"') \
        == ('bearer', {'realm': 'https://a/token', 'service': 'reg',
                       'scope': 'repository:x:pull'})
    assert _challenge('Basic realm="r"')[0] == 'basic'
    assert _next_link('</v2/_catalog?last=b&n=2>; rel="next"') == '/v2/_catalog?last=b&n=2'
    assert _next_link(None) is None


class Response:
    """The part of http.client.HTTPResponse the client reads."""

    def __init__(self, body, fail=None):
        self._body, self._fail, self.closed = io.BytesIO(body), fail, False

    def read(self, size=-1):
        if self._fail:
            raise self._fail
        return self._body.read(size)

    def isclosed(self):
        return self.closed or self._body.tell() == len(self._body.getvalue())

    def close(self):
        self.closed = True


def test_blob_stream_drops_the_connection_when_closed_early_and_names_cut_transfers():
    connection = mock.Mock()
    stream = registry_api.BlobStream(Response(b'abc'), connection, 'blob x')
    assert stream.read(1) == b'a'
    stream.close()
    connection.close.assert_called_once_with()
    connection = mock.Mock()
    with registry_api.BlobStream(Response(b'abc'), connection, 'blob x') as stream:
        assert stream.read() == b'abc'
    connection.close.assert_not_called()  # read to the end: the connection serves again
    cut = registry_api.BlobStream(Response(b'', http.client.IncompleteRead(b'')),
                                  mock.Mock(), 'blob x')
    with pytest.raises(RegistryError, match='reading blob x failed'):
        cut.read(10)


def test_json_answers_that_are_not_objects_are_registry_errors():
    assert registry_api.json_object(b'{"a": 1}', 'x') == {'a': 1}
    for data in (b'<html>', b'[1]', b'\xff'):
        with pytest.raises(RegistryError, match='the catalog'):
            registry_api.json_object(data, 'the catalog')


def test_client_certificate_is_presented_and_a_bad_one_is_a_registry_error(tmp_path):
    with mock.patch('ssl.SSLContext.load_cert_chain') as load:
        registry_api.Registry('https://127.0.0.1:5000', client_cert='/c.crt',
                              client_key='/c.key')
    load.assert_called_once_with('/c.crt', '/c.key')
    with pytest.raises(RegistryError, match='client certificate'):
        registry_api.Registry('https://127.0.0.1:5000', client_cert=str(tmp_path / 'none'),
                              client_key=str(tmp_path / 'none'))


def test_our_registry_uses_the_units_access_with_its_client_certificate():
    from charms.layer import hook_tools, registry_access
    access = registry_access.Access('https://127.0.0.1:5000', '127.0.0.1:5000', 'admin', 'pw',
                                    '/ca.crt', '/unit.crt', '/unit.key')
    with mock.patch.object(registry_access, 'access', return_value=access), \
            mock.patch.object(hook_tools, 'ingress_address', return_value='198.51.100.1'), \
            mock.patch.object(hook_tools, 'related_addresses', return_value=[]), \
            mock.patch.object(hook_tools, 'config', return_value={'registry-port': 5000}), \
            mock.patch.object(action_support, 'Registry') as registry:
        _, netloc = action_support.our_registry()
    assert netloc == '198.51.100.1:5000'
    registry.assert_called_once_with('https://127.0.0.1:5000', 'admin', 'pw',
                                     ca_file='/ca.crt', check_hostname=False,
                                     client_cert='/unit.crt', client_key='/unit.key')


def test_hook_tools_read_json_and_pass_values_as_arguments():
    from charms.layer import hook_tools
    calls = []

    def run(argv, **kwargs):
        calls.append(argv)
        out = {'config-get': '{"registry-port": 5000}', 'network-get': '{}',
               'unit-get': '198.51.100.9\n', 'relation-ids': '["website:3"]',
               'relation-list': '["haproxy/0"]',
               'relation-get': '{"private-address": "198.51.100.1"}'}.get(argv[0], '')
        return mock.Mock(stdout=out)

    with mock.patch.object(hook_tools.subprocess, 'run', side_effect=run), \
            mock.patch.object(hook_tools, '_reads', {}):
        hook_tools.prefetch()
        assert hook_tools.config() == {'registry-port': 5000}
        assert hook_tools.config() == {'registry-port': 5000}  # read once
        assert hook_tools.ingress_address('docker-registry') == '198.51.100.9'
        assert hook_tools.related_addresses('website') == [('haproxy/0', '198.51.100.1')]
        hook_tools.action_set({'a': 'x y', 'b': '1'})
    assert [c[0] for c in calls].count('config-get') == 1
    assert ('action-set', 'a=x y', 'b=1') in calls


# --- action plumbing ---------------------------------------------------------------------------

def test_lock_is_exclusive_and_names_the_holder(tmp_path):
    path = str(tmp_path / 'lock')
    with action_support.Lock('mirror', path):
        with pytest.raises(action_support.Busy, match='mirror .pid'):
            with action_support.Lock('push', path):
                pass
    with action_support.Lock('push', path):
        pass


def test_params():
    values = {'a': 'x ', 'b': 'true', 'c': True, 'n': '7', 'bad': 3}
    assert action_support.text_param(values, 'a') == 'x'
    assert action_support.bool_param(values, 'b') and action_support.bool_param(values, 'c')
    assert action_support.int_param(values, 'n', 1, 1, 10) == 7
    for call in (lambda: action_support.text_param(values, 'bad'),
                 lambda: action_support.bool_param(values, 'a'),
                 lambda: action_support.int_param(values, 'n', 1, 1, 5),
                 lambda: action_support.unit_path('relative', 'file'),
                 lambda: action_support.unit_path('/no/such/file', 'file')):
        with pytest.raises(action_support.ActionError):
            call()


def test_big_results_go_to_a_private_file(tmp_path):
    with mock.patch.object(registry_paths, 'RESULTS_DIR', str(tmp_path)), \
            mock.patch.object(action_support.hook_tools, 'action_set') as action_set:
        action_support.set_results({'json': [{'x': 'y' * 100}] * 1000, 'small': 'ok'}, 'images')
    results = action_set.call_args[0][0]
    assert results['small'] == 'ok' and len(results['json']) < action_support.MAX_RESULT
    with open(results['json-file']) as f:
        assert len(json.load(f)) == 1000
    assert oct(os.stat(results['json-file']).st_mode & 0o777) == '0o600'


@pytest.mark.parametrize('error,message', [
    (registry_refs.InvalidReference('invalid image reference'), 'invalid image reference'),
    (RegistryError('cannot reach x'), 'cannot reach x'),
    (ValueError('boom'), 'push failed unexpectedly: ValueError: boom'),
])
def test_run_turns_failures_into_action_fail(error, message):
    def main(values):
        raise error
    with mock.patch.object(action_support.hook_tools, 'prefetch'), \
            mock.patch.object(action_support.hook_tools, 'action_get', return_value={}), \
            mock.patch.object(action_support.hook_tools, 'action_fail') as fail, \
            mock.patch.object(action_support.hook_tools, 'log'), \
            mock.patch.object(action_support.hook_tools, 'action_set') as action_set:
        assert action_support.run(main, 'push') is False
    fail.assert_called_once_with(message)
    action_set.assert_not_called()


# --- image actions -----------------------------------------------------------------------------

def test_an_unreachable_source_host_is_tried_once():
    from charms.layer import registry_image_actions
    client = mock.Mock()
    client.ping.side_effect = RegistryError('cannot reach q.io:5000: refused')
    sources = registry_image_actions.Sources()
    with mock.patch.object(registry_image_actions, 'Registry', return_value=client) as made:
        for _ in range(3):
            with pytest.raises(RegistryError, match='cannot reach registry q.io:5000'):
                sources.get('q.io:5000')
    assert made.call_count == 1  # HTTPS only: not a loopback host


def test_garbage_collect_refuses_shared_storage_with_several_units():
    from charms.layer import registry_config, registry_garbage_collect, registry_juju
    with mock.patch.object(registry_garbage_collect, 'is_flag_set', return_value=False), \
            mock.patch.object(registry_garbage_collect, 'config',
                              return_value={'storage-s3-bucket': 'b'}), \
            mock.patch.object(registry_config, 'shares_storage', return_value=True), \
            mock.patch.object(registry_juju, 'container_status', return_value='running'), \
            mock.patch.object(registry_juju, 'registry_units',
                              return_value=[('r/0', 'a'), ('r/1', 'b')]):
        with pytest.raises(action_support.ActionError, match='share its storage'):
            registry_garbage_collect.garbage_collect({})


@pytest.mark.parametrize('path', ['/etc/docker/registry/config.yml',
                                  '/etc/docker/registry/../registry/htpasswd'])
def test_mirror_never_reads_an_image_list_from_the_charms_secrets(path):
    # Invalid entries are quoted in the action's results.
    from charms.layer import registry_image_actions
    from charms.layer.action_support import ActionError
    with mock.patch('os.path.exists', return_value=True), \
            pytest.raises(ActionError, match='holds secrets, not an image list'):
        registry_image_actions.image_list({'file': path})


# --- hardening (issue 12) ----------------------------------------------------------------------

class Answer:
    """An http.client response: status, headers, body."""

    def __init__(self, status, headers=None, body=b''):
        self.status, self._headers, self._body = status, headers or {}, body

    def getheader(self, name, default=None):
        return self._headers.get(name, default)

    def read(self, size=-1):
        return self._body


@pytest.mark.parametrize('realm,sent', [
    ('http://127.0.0.1:5000/token', True),       # the registry's own host
    ('https://auth.example.com/token', True),    # another host, over TLS (Docker Hub's way)
    ('http://auth.example.com/token', False),    # another host, in clear: never
])
def test_credentials_go_to_a_token_realm_only_on_the_same_host_or_over_https(realm, sent):
    client = registry_api.Registry('http://127.0.0.1:5000', 'user', 'pw')
    requests = []

    def send(method, url, headers, body):
        requests.append((url, headers.get('Authorization')))
        if url.startswith(realm):
            return Answer(200, body=b'{"token": "t"}')
        if headers.get('Authorization') == 'Bearer t':
            return Answer(200)
        return Answer(401, {'WWW-Authenticate': 'Bearer realm="{}",service="r"'.format(realm)})

    with mock.patch.object(client, '_send', side_effect=send):
        client.ping()
    token_request = [auth for url, auth in requests if url.startswith(realm)]
    assert token_request == [client._basic_credentials() if sent else None]


def test_upload_body_is_exactly_the_descriptors_size():
    data = b'blob bytes'
    body = registry_api.ExactBody(io.BytesIO(data), len(data), 'blob x')
    assert b''.join(iter(lambda: body.read(3), b'')) == data
    smuggled = registry_api.ExactBody(io.BytesIO(data + b'GET /next'), len(data), 'blob x')
    with pytest.raises(RegistryError, match='more than its size'):
        while smuggled.read(4):
            pass
    short = registry_api.ExactBody(io.BytesIO(data[:-1]), len(data), 'blob x')
    with pytest.raises(RegistryError, match='short of its size'):
        while short.read(4):
            pass
    empty = registry_api.ExactBody(io.BytesIO(b''), 0, 'blob x')
    assert empty.read(10) == b''
    with pytest.raises(RegistryError, match='more than its size'):
        registry_api.ExactBody(io.BytesIO(b'x'), 0, 'blob x').read(10)


def test_upload_stops_at_the_size_and_drops_the_connection_on_a_bad_source():
    client = registry_api.Registry('http://127.0.0.1:5000')
    connection = mock.Mock()
    sent = []

    def request(method, target, body=None, headers=None):
        while True:  # what http.client does with a readable body
            block = body.read(8192)
            if not block:
                break
            sent.append(block)

    connection.request.side_effect = request
    with mock.patch.object(client, '_connection', return_value=connection):
        data = b'layer'
        with pytest.raises(RegistryError, match='more than its size'):
            client.upload('r', sha(data), len(data), io.BytesIO(data + b'smuggled'),
                          location='/v2/r/blobs/uploads/1')
    assert b''.join(sent) == b''  # refused before the bytes went out
    connection.close.assert_called_once_with()


def test_source_credentials_go_only_to_the_host_they_were_given_for():
    from charms.layer import registry_image_actions
    sources = registry_image_actions.Sources('127.0.0.1:5000', 'user', 'pw')
    with mock.patch.object(registry_image_actions, 'Registry') as made:
        sources.get('127.0.0.1:5000')
        sources.get('127.0.0.2:5000')
    assert made.call_args_list[0].args[1:3] == ('user', 'pw')
    assert made.call_args_list[1].args[1:3] == (None, None)


def test_mirror_credentials_need_one_host():
    from charms.layer import registry_image_actions as actions
    refs = ['a.io/x:1', 'b.io/y:1']
    with pytest.raises(action_support.ActionError, match='credentials-host'):
        actions._credentials_host({}, refs, 'user')
    assert actions._credentials_host({'credentials-host': 'b.io'}, refs, 'user') == 'b.io'
    assert actions._credentials_host({}, ['a.io/x:1', 'a.io/z:2'], 'user') == 'a.io'
    assert actions._credentials_host({}, ['nginx:1'], 'user') == 'registry-1.docker.io'
    assert actions._credentials_host({}, refs, None) is None


@pytest.mark.parametrize('content', [
    '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n'
    'abcdefsecret\n-----END OPENSSH PRIVATE KEY-----\n',
    '{\n  "auths": {\n    "r.io": {"auth": "dXNlcjpzZWNyZXQ="}\n  }\n}\n',
    'a.io/fine:1\nhunter2 is my password\n'])
def test_mirror_refuses_a_file_that_is_not_an_image_list_without_quoting_it(tmp_path, content):
    from charms.layer import registry_image_actions
    path = tmp_path / 'list.txt'
    path.write_text(content)
    with pytest.raises(action_support.ActionError, match='is not an image list') as error:
        registry_image_actions.image_list({'file': str(path)})
    for line in content.splitlines():
        for word in line.split():
            assert len(word) < 4 or word not in str(error.value).replace(str(path), '')


@pytest.mark.parametrize('path', ['/etc/ssh/ssh_host_ed25519_key', '/root/.docker/config.json',
                                  '/home/ubuntu/.ssh/id_rsa', '/etc/shadow'])
def test_mirror_never_reads_secret_places(path):
    from charms.layer import registry_image_actions
    with mock.patch('builtins.open', side_effect=AssertionError('read')), \
            pytest.raises(action_support.ActionError, match='holds secrets'):
        registry_image_actions.image_list({'file': path})


def test_mirror_reads_a_plain_list_file(tmp_path):
    from charms.layer import registry_image_actions
    path = tmp_path / 'list.txt'
    path.write_text('# mine\nv1.29-static: a.io/x:1 a.io/y:2\nb.io/z:3\n')
    refs, problems = registry_image_actions.image_list({'file': str(path)})
    assert refs == ['a.io/x:1', 'a.io/y:2', 'b.io/z:3'] and problems == []


def test_directory_archives_never_follow_links_out_of_the_directory(tmp_path):
    (tmp_path / 'secret').write_text('root:$6$hash')
    archive = tmp_path / 'archive'
    archive.mkdir()
    (archive / 'config.json').write_text('{"os": "linux", "architecture": "amd64"}')
    (archive / 'layer.tar').symlink_to(tmp_path / 'secret')
    (archive / 'again.tar').symlink_to('config.json')  # inside: docker save does this
    (archive / 'manifest.json').write_text(json.dumps(
        [{'Config': 'config.json', 'Layers': ['layer.tar'], 'RepoTags': ['a:1']}]))
    entries, source = registry_copy.docker_archive_entries(str(archive))
    (_, config, layers), = entries
    assert source.read('again.tar') == source.read('config.json')
    dst = FakeRegistry()
    with pytest.raises(registry_copy.CopyError, match='symbolic link out of'):
        registry_copy.push_docker_image(dst, source, 'a', ['1'], config, layers)
    assert not [c for c in dst.calls if c[0] == 'upload' and
                dst.blobs.get(c[2], b'').startswith(b'root')]


def test_progress_lines_do_not_wait_but_keep_their_order():
    from charms.layer import hook_tools
    started, waited = [], []

    class Line:
        def __init__(self, argv, **kwargs):
            started.append(argv[1])

        def wait(self, timeout=None):
            waited.append(started[len(waited)])

    with mock.patch.object(hook_tools.subprocess, 'Popen', Line):
        hook_tools.action_log('one')
        assert waited == []  # the action goes on while the line is written
        hook_tools.action_log('two')
        assert waited == ['one']  # 'two' starts only once 'one' is written
        hook_tools.wait_for_log()
    assert started == waited == ['one', 'two']


# --- bad parameters name themselves -----------------------------------------------------------

def test_mirror_refuses_an_architecture_nobody_builds_for():
    from charms.layer import registry_image_actions
    with pytest.raises(action_support.ActionError, match="arches: 'x86' is not an architecture"):
        registry_image_actions.image_list({'images': 'r.example/a:1', 'arches': 'amd64,x86'})
    refs, _ = registry_image_actions.image_list({'images': 'r.example/a:1', 'arches': 'riscv64'})
    assert refs


@pytest.mark.parametrize('platform, valid', [
    ('linux/amd64', True), ('linux/arm64/v8', True), ('linux/../..', False),
    ('linux', False), ('linux/amd64 --all', False), ('Linux/AMD64', False)])
def test_platforms_are_os_and_architecture(platform, valid):
    assert bool(registry_refs.PLATFORM.match(platform)) == valid


def test_an_invalid_reference_names_its_parameter():
    with pytest.raises(action_support.ActionError) as raised:
        with action_support.about('image'):
            registry_refs.parse('--help')
    assert str(raised.value).startswith("image: '--help': invalid")
