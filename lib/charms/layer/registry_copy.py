"""Copying images into a registry, byte for byte, from registries, OCI layouts and
docker archives; and writing images out to archives.

Manifests and manifest lists are copied unchanged, so digests stay the source's and every
platform of an index comes along. Blobs the destination repository has are skipped, blobs
another destination repository has are mounted, the rest are streamed from the source
straight into the upload (never held in memory). Blob transfers run in parallel; the same
blob is never uploaded twice at once.
"""
import io
import json
import os
import re
import tarfile
import threading
import zlib
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

from charms.layer.registry_api import (DOCKER_MANIFEST, INDEX_TYPES, OCI_INDEX, OCI_MANIFEST,
                                       SCHEMA1_TYPES, json_object, sha256)

DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json'
DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip'
REF_NAME = 'org.opencontainers.image.ref.name'
CONTAINERD_NAME = 'io.containerd.image.name'
DIGEST = re.compile(r'^sha256:[a-f0-9]{64}$')
NON_DISTRIBUTABLE = ('application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
                     'application/vnd.oci.image.layer.nondistributable.v1.tar',
                     'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip')

# digest and media type of what was written, and its platforms ([] for a plain image
# whose platform is only in its config).
Copied = namedtuple('Copied', 'digest media_type platforms')


class CopyError(Exception):
    pass


def is_index(media_type):
    return media_type in INDEX_TYPES


def platform_string(platform):
    """'os/architecture[/variant]' of an index entry's platform or of an image config."""
    if not isinstance(platform, dict):
        return ''
    return '/'.join(p for p in (platform.get('os'), platform.get('architecture'),
                                platform.get('variant')) if isinstance(p, str) and p)


def json_document(data, what):
    """The JSON object of a manifest, index or archive file; CopyError otherwise."""
    return json_object(data, what, CopyError)


def valid_descriptor(value, what):
    """A content descriptor whose digest and size can be trusted as names and lengths (an
    archive's digests become file names)."""
    if not (isinstance(value, dict) and isinstance(value.get('digest'), str) and
            DIGEST.match(value['digest']) and isinstance(value.get('size'), int) and
            value['size'] >= 0):
        raise CopyError('{} holds an invalid descriptor: {!r}'.format(what, value)[:300])
    return value


def index_entries(index, what):
    """The descriptors of the manifests an index lists."""
    return [valid_descriptor(entry, what) for entry in index.get('manifests') or ()]


def blobs_of(manifest, what='the manifest'):
    """Descriptors of the blobs (config and distributable layers) of an image manifest."""
    out = [valid_descriptor(manifest['config'], what)] if manifest.get('config') else []
    for layer in manifest.get('layers') or ():
        if isinstance(layer, dict) and (layer.get('urls') or
                                        layer.get('mediaType') in NON_DISTRIBUTABLE):
            continue  # foreign layers stay where their URLs point
        out.append(valid_descriptor(layer, what))
    return out


# --- sources ------------------------------------------------------------------------------

class RegistrySource:
    """Images of one repository of a registry."""

    def __init__(self, registry, repo):
        self.registry, self.repo = registry, repo

    def manifest(self, reference):
        return self.registry.manifest(self.repo, reference)

    def open_blob(self, descriptor):
        return self.registry.open_blob(self.repo, descriptor['digest'])

    def mount_source(self):
        return self.registry.url, self.repo


class LayoutSource:
    """An OCI image layout, as a directory or a tar archive."""

    def __init__(self, path):
        self.path = path
        self._tar = None if os.path.isdir(path) else tarfile.open(path, 'r:*')
        self._lock = threading.Lock()

    def open(self, name):
        """A readable stream of the file name (a path inside the layout; close it after)."""
        if not isinstance(name, str) or not name or os.path.isabs(name) or \
                '..' in name.split('/'):
            raise CopyError('the archive names a file outside itself: {!r}'.format(name))
        if self._tar is None:
            return self._open_file(name)
        with self._lock:
            member = self._member(self._tar, name)
            data = self._extract(self._tar, member).read() if member.size < (1 << 20) \
                else None
        if data is not None:
            return io.BytesIO(data)
        # Big members get their own handle, so parallel readers do not share a position.
        tar = tarfile.open(self.path, 'r:*')
        return _Closing(self._extract(tar, self._member(tar, name)), tar)

    def _open_file(self, name):
        """A file of a directory archive, never one outside it that a symbolic link leads
        to: a layer linked to /etc/shadow would otherwise be pushed into the registry.
        Links inside stay allowed (docker save links a repeated layer to its first copy)."""
        path = os.path.join(self.path, name)
        if not os.path.realpath(path).startswith(os.path.realpath(self.path) + os.sep):
            raise CopyError('{} in the archive is a symbolic link out of the archive\'s '
                            'directory; refused'.format(name))
        try:
            return open(path, 'rb')
        except FileNotFoundError:
            raise CopyError('the archive has no {}'.format(name))

    @staticmethod
    def _member(tar, name):
        for candidate in (name, './' + name):
            try:
                return tar.getmember(candidate)
            except KeyError:
                pass
        raise CopyError('the archive has no {}'.format(name))

    @staticmethod
    def _extract(tar, member):
        stream = tar.extractfile(member)  # None for directories and devices
        if stream is None:
            raise CopyError('{} in the archive is not a file'.format(member.name))
        return stream

    def read(self, name):
        with self.open(name) as stream:
            return stream.read()

    def index(self):
        return json_document(self.read('index.json'), 'index.json of the archive')

    def manifest(self, digest):
        data = self.read(_blob_name(digest))
        if sha256(data) != digest:
            raise CopyError('blob {} of the archive does not match its digest'.format(digest))
        media_type = json_document(data, 'manifest ' + digest).get('mediaType') or OCI_MANIFEST
        return digest, media_type, data

    def open_blob(self, descriptor):
        return self.open(_blob_name(descriptor['digest']))

    def mount_source(self):
        return None

    def close(self):
        if self._tar is not None:
            self._tar.close()


class _Closing:
    def __init__(self, stream, owner):
        self._stream, self._owner = stream, owner

    def read(self, n=-1):
        return self._stream.read(n)

    def close(self):
        self._owner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _blob_name(digest):
    """Where an OCI layout keeps a blob (digest: checked by valid_descriptor())."""
    algorithm, _, hexdigest = digest.partition(':')
    return 'blobs/{}/{}'.format(algorithm, hexdigest)


# --- copying ------------------------------------------------------------------------------

class Copier:
    """Copies into one destination registry; safe to share between threads."""

    def __init__(self, dst, blob_workers=4):
        self.dst = dst
        self._known = {}      # digest -> [destination repositories that have the blob]
        self._locks = {}
        self._guard = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=blob_workers)
        self.stats = {'blobs-copied': 0, 'blobs-mounted': 0, 'blobs-present': 0,
                      'bytes-copied': 0}

    def close(self):
        self._pool.shutdown(wait=True)

    def _count(self, key, value=1):
        with self._guard:
            self.stats[key] += value

    def _blob_lock(self, digest):
        with self._guard:
            return self._locks.setdefault(digest, threading.Lock())

    def copy_blob(self, source, dst_repo, descriptor):
        digest = descriptor['digest']
        with self._blob_lock(digest):
            holders = self._known.setdefault(digest, [])
            if dst_repo in holders:
                self._count('blobs-present')
                return
            # A blob this copier put in another repository is mounted without asking first
            # whether dst_repo has it: one round trip per shared layer instead of two. Never
            # twice into one repository: the registry rewrites the link, and a manifest
            # being stored meanwhile reads it half-written (DIGEST_INVALID).
            mount_from = holders[0] if holders else None
            if mount_from is None and self.dst.has_blob(dst_repo, digest):
                self._count('blobs-present')
                holders.append(dst_repo)
                return
            location = None
            origin = source.mount_source()
            if mount_from is None and origin and origin[0] == self.dst.url:
                mount_from = origin[1]  # copying inside one registry
            if mount_from and mount_from != dst_repo:
                answer = self.dst.mount_blob(dst_repo, digest, mount_from)
                if answer is True:
                    self._count('blobs-mounted')
                    holders.append(dst_repo)
                    return
                location = answer
            stream = source.open_blob(descriptor)
            try:
                self.dst.upload(dst_repo, digest, descriptor['size'], stream, location)
            finally:
                stream.close()
            self._count('blobs-copied')
            self._count('bytes-copied', descriptor['size'])
            holders.append(dst_repo)

    def _copy_blobs(self, source, dst_repo, descriptors):
        unique = list({d['digest']: d for d in descriptors}.values())
        # Largest first: the longest transfers start early.
        unique.sort(key=lambda d: -d.get('size', 0))
        futures = [self._pool.submit(self.copy_blob, source, dst_repo, d) for d in unique]
        errors = []
        for future in futures:
            try:
                future.result()
            except Exception as error:  # report the first, after every transfer ended
                errors.append(error)
        if errors:
            raise errors[0]

    def copy(self, source, reference, dst_repo, dst_tag=None):
        """Copy the image source names reference to dst_repo:dst_tag (by digest without a
        tag). Returns Copied."""
        digest, media_type, data = source.manifest(reference)
        if media_type in SCHEMA1_TYPES:
            raise CopyError('{} is a schema 1 manifest, which registries no longer accept'
                            .format(reference))
        top = json_document(data, 'manifest {}'.format(reference))
        platforms = []
        if is_index(media_type):
            children, blobs = [], []
            for entry in index_entries(top, 'index {}'.format(reference)):
                child_digest, child_type, child_data = source.manifest(entry['digest'])
                if is_index(child_type):
                    raise CopyError('{}: nested indexes are not supported'.format(reference))
                what = 'manifest ' + child_digest
                blobs += blobs_of(json_document(child_data, what), what)
                children.append((child_digest, child_type, child_data))
                platforms.append(platform_string(entry.get('platform')))
            self._copy_blobs(source, dst_repo, blobs)
            for child_digest, child_type, child_data in children:
                written = self.dst.put_manifest(dst_repo, child_digest, child_type, child_data)
                _same(child_digest, written)
        else:
            self._copy_blobs(source, dst_repo, blobs_of(top, 'manifest {}'.format(reference)))
        written = self.dst.put_manifest(dst_repo, dst_tag or digest, media_type, data)
        _same(digest, written)
        return Copied(digest, media_type, platforms)


def _same(expected, written):
    if written != expected:
        raise CopyError('the destination stored digest {} instead of {}'.format(written,
                                                                              expected))


# --- OCI layouts and docker archives in -------------------------------------------------------

def archive_kind(path):
    """'oci' or 'docker-archive' (a directory or tar); raises CopyError otherwise."""
    if os.path.isdir(path):
        names = set(os.listdir(path))
    else:
        try:
            with tarfile.open(path, 'r:*') as tar:
                names = set(tar.getnames())
        except (tarfile.TarError, OSError) as error:
            raise CopyError('{} is not a readable tar archive: {}'.format(path, error))
        names = {n[2:] if n.startswith('./') else n for n in names}
    if 'index.json' in names and 'oci-layout' in names:
        return 'oci'
    if 'manifest.json' in names:
        return 'docker-archive'
    raise CopyError('{} is neither an OCI layout (index.json, oci-layout) nor a docker '
                    'archive (manifest.json)'.format(path))


def layout_entries(source):
    """[(name, descriptor)] of an OCI layout's index: name is the image name annotation
    (containerd's full name, else the OCI ref.name, which may be a tag alone)."""
    out = []
    for entry in index_entries(source.index(), 'index.json of the archive'):
        annotations = entry.get('annotations')
        annotations = annotations if isinstance(annotations, dict) else {}
        out.append((annotations.get(CONTAINERD_NAME) or annotations.get(REF_NAME) or '',
                    entry))
    return out


def docker_archive_entries(path):
    """([(repo_tags, config_name, layer_names)] of a docker archive's manifest.json, the
    LayoutSource that reads the archive's files: close it after)."""
    source = LayoutSource(path)
    try:
        items = json.loads(source.read('manifest.json'))
        entries = [(item.get('RepoTags') or [], item['Config'], list(item['Layers']))
                   for item in items]
    except (KeyError, TypeError, ValueError, AttributeError, CopyError) as error:
        source.close()
        raise CopyError('invalid manifest.json in {}: {}'.format(path, error))
    return entries, source


def _gzip_chunks(stream, level):
    """gzip (deterministic header: no name, mtime 0) of a stream, in chunks."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    while True:
        block = stream.read(1 << 20)
        if not block:
            break
        out = compressor.compress(block)
        if out:
            yield out
    yield compressor.flush()


def push_docker_image(dst, source, dst_repo, tags, config_name, layer_names, level=1):
    """Upload one image of a docker archive (docker save) under each of tags: layers
    gzip-compressed unless they already are. Returns Copied of the v2 schema 2 manifest."""
    config = source.read(config_name)
    platform = platform_string(json_document(config, 'image config ' + str(config_name)))
    config_digest = sha256(config)
    if not dst.has_blob(dst_repo, config_digest):
        dst.upload(dst_repo, config_digest, len(config), io.BytesIO(config))
    layers = []
    for name in layer_names:
        with source.open(name) as stream:
            head = stream.read(2)
        with source.open(name) as stream:
            chunks = iter(lambda: stream.read(1 << 20), b'')
            if head != b'\x1f\x8b':  # gzip's magic number
                chunks = _gzip_chunks(stream, level)
            data_digest, size = dst.upload_chunks(dst_repo, chunks)
        layers.append({'mediaType': DOCKER_LAYER, 'size': size, 'digest': data_digest})
    # Indented by 3 like the manifests docker push writes.
    manifest = json.dumps({
        'schemaVersion': 2, 'mediaType': DOCKER_MANIFEST,
        'config': {'mediaType': DOCKER_CONFIG, 'size': len(config), 'digest': config_digest},
        'layers': layers}, indent=3).encode()
    for tag in tags:
        _same(sha256(manifest), dst.put_manifest(dst_repo, tag, DOCKER_MANIFEST, manifest))
    return Copied(sha256(manifest), DOCKER_MANIFEST, [platform] if platform else [])


def _for_platform(entries, platform):
    """The index entry of platform ('os/arch[/variant]'): the exact one, else the first of
    the same os/arch when platform names no variant (linux/arm64 finds linux/arm64/v8)."""
    exact = [e for e in entries if platform_string(e.get('platform')) == platform]
    if exact:
        return exact[0]
    if platform and platform.count('/') == 1:
        near = [e for e in entries
                if platform_string(e.get('platform')).startswith(platform + '/')]
        return near[0] if near else None
    return None


# --- archives out ---------------------------------------------------------------------------

class ArchiveWriter:
    """Writes images read from a registry into a tar: an OCI layout, or a docker archive
    (one platform per image, for `docker load`). Blobs are written once."""

    def __init__(self, path, kind='oci'):
        self.kind = kind
        self._written = set()
        self._index = []
        self._docker = []
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file = os.fdopen(fd, 'wb')
        self._tar = tarfile.open(fileobj=self._file, mode='w', format=tarfile.PAX_FORMAT)
        self.bytes = 0

    def _add(self, name, size, stream):
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o644, 0
        self._tar.addfile(info, stream)

    def _blob(self, registry, repo, descriptor):
        digest = descriptor['digest']
        if digest in self._written:
            return
        stream = registry.open_blob(repo, digest)
        try:
            self._add(_blob_name(digest), descriptor['size'], stream)
        finally:
            stream.close()
        self._written.add(digest)
        self.bytes += descriptor['size']

    def _manifest_blob(self, digest, data):
        if digest not in self._written:
            self._add(_blob_name(digest), len(data), io.BytesIO(data))
            self._written.add(digest)
            self.bytes += len(data)

    def add(self, registry, repo, tag, platform=None):
        """Add repo:tag; platform picks the image of an index for docker archives.
        Returns Copied."""
        digest, media_type, data = registry.manifest(repo, tag)
        name = '{}:{}'.format(repo, tag)
        top = json_document(data, name)
        if self.kind == 'docker-archive':
            if is_index(media_type):
                entries = index_entries(top, name)
                chosen = _for_platform(entries, platform)
                if chosen is None:
                    raise CopyError('{} has no {} image (it has {})'.format(
                        name, platform, ', '.join(platform_string(e.get('platform'))
                                                  for e in entries)))
                digest, media_type, data = registry.manifest(repo, chosen['digest'])
                top = json_document(data, '{}@{}'.format(repo, digest))
            blobs = blobs_of(top, name)
            if not top.get('config') or len(blobs) != 1 + len(top.get('layers') or ()):
                raise CopyError('{}: docker archives need an image with a config and no '
                                'foreign layers'.format(name))
            for blob in blobs:
                self._blob(registry, repo, blob)
            self._docker.append({'Config': _blob_name(blobs[0]['digest']),
                                 'RepoTags': [name],
                                 'Layers': [_blob_name(layer['digest']) for layer in blobs[1:]]})
            return Copied(digest, media_type, [platform] if platform else [])
        platforms = []
        if is_index(media_type):
            for entry in index_entries(top, name):
                child_digest, _, child_data = registry.manifest(repo, entry['digest'])
                for blob in blobs_of(json_document(child_data, 'manifest ' + child_digest),
                                     'manifest ' + child_digest):
                    self._blob(registry, repo, blob)
                self._manifest_blob(child_digest, child_data)
                platforms.append(platform_string(entry.get('platform')))
        else:
            for blob in blobs_of(top, name):
                self._blob(registry, repo, blob)
        self._manifest_blob(digest, data)
        self._index.append({'mediaType': media_type, 'digest': digest, 'size': len(data),
                            'annotations': {REF_NAME: name}})
        return Copied(digest, media_type, platforms)

    def abort(self):
        """Close without writing the index (the caller removes the partial file)."""
        self._file.close()

    def close(self):
        if self.kind == 'docker-archive':
            data = json.dumps(self._docker).encode()
            self._add('manifest.json', len(data), io.BytesIO(data))
        else:
            layout = json.dumps({'imageLayoutVersion': '1.0.0'}).encode()
            self._add('oci-layout', len(layout), io.BytesIO(layout))
            index = json.dumps({'schemaVersion': 2, 'mediaType': OCI_INDEX,
                                'manifests': self._index}).encode()
            self._add('index.json', len(index), io.BytesIO(index))
        self._tar.close()
        self._file.close()
