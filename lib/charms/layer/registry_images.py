"""What the registry holds, and removing it: inventory, delete, garbage collection.

inventory() and delete() talk to the registry through registry_api; the garbage-collection
helpers are pure (output parsing, the registry binary of an image) or read the filesystem
storage (sizes, manifests nobody references).
"""
import json
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor

from charms.layer import registry_refs
from charms.layer.registry_api import RegistryError
from charms.layer.registry_copy import (CopyError, blobs_of, index_entries, is_index,
                                        json_document, platform_string)

GC_ELIGIBLE = re.compile(r'blob eligible for deletion: (sha256:[0-9a-f]{64})')
GC_SUMMARY = re.compile(r'(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible')


# --- inventory -----------------------------------------------------------------------------

def inventory(registry, repository='', tag='', page_size=1000, workers=8, progress=None):
    """[{repository, tag, digest, media-type, platforms, size}] sorted by repository and tag.

    repository and tag are glob patterns ('' matches all). size: bytes of the manifest(s)
    and every distinct blob they reference (all platforms of an index).
    """
    repos = [r for r in registry.catalog(page_size) if registry_refs.matches(r, repository)]
    if progress:
        progress('{} repositories match'.format(len(repos)))
    cache = {}

    def manifest(repo, reference):
        key = reference if reference.startswith('sha256:') else None
        if key and key in cache:
            return cache[key]
        value = registry.manifest(repo, reference)
        cache[value[0]] = value
        return value

    def config_platform(repo, digest):
        key = ('config', digest)
        if key not in cache:
            try:
                cache[key] = platform_string(json_document(registry.blob(repo, digest),
                                                           'config ' + digest))
            except (RegistryError, CopyError):
                cache[key] = ''
        return cache[key]

    def rows_of(repo):
        rows = []
        for name in sorted(registry.tags(repo, page_size)):
            if not registry_refs.matches(name, tag):
                continue
            try:
                digest, media_type, data = manifest(repo, name)
            except RegistryError as error:
                if error.status == 404:
                    continue  # deleted since the tag list was read
                raise
            what = '{}:{}'.format(repo, name)
            document = json_document(data, what)
            blobs, size = {}, len(data)
            if is_index(media_type):
                platforms = []
                for entry in index_entries(document, what):
                    platforms.append(platform_string(entry.get('platform')))
                    size += entry['size']
                    try:
                        child_digest, _, child_data = manifest(repo, entry['digest'])
                    except RegistryError:
                        continue  # a platform the registry lacks: no blobs to count
                    child = json_document(child_data, '{}@{}'.format(repo, child_digest))
                    blobs.update((b['digest'], b['size']) for b in blobs_of(child, what))
            else:
                descriptors = blobs_of(document, what)  # the config first, when there is one
                blobs.update((b['digest'], b['size']) for b in descriptors)
                platforms = [config_platform(repo, descriptors[0]['digest'])] \
                    if document.get('config') else []
            rows.append({'repository': repo, 'tag': name, 'digest': digest,
                         'media-type': media_type, 'platforms': [p for p in platforms if p],
                         'size': size + sum(blobs.values())})
        return rows

    out = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, rows in enumerate(pool.map(rows_of, repos), 1):
            out += rows
            if progress and done % 500 == 0:
                progress('{}/{} repositories read'.format(done, len(repos)))
    return out, len(repos)


def human_size(size):
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if size < 1024 or unit == 'GiB':
            return ('{:.0f} {}' if unit == 'B' else '{:.1f} {}').format(size, unit)
        size /= 1024.0


def inventory_text(rows):
    """A readable table: one line per tag."""
    if not rows:
        return 'no images'
    lines = []
    for row in rows:
        lines.append('{}:{}  {}  {}  {}'.format(
            row['repository'], row['tag'], row['digest'][:19], human_size(row['size']),
            ','.join(row['platforms']) or '-'))
    return '\n'.join(lines)


# --- delete --------------------------------------------------------------------------------

def delete(registry, ref):
    """Remove ref (repository:tag or repository@digest) from the registry.

    By digest: the manifest and every tag naming it go. By tag: only that tag goes; other
    tags of the same manifest are put back (Distribution 2.x can only delete manifests).
    Returns {'removed': digest, 'kept-tags': [...]}.
    """
    if ref.digest:
        registry.delete_manifest(ref.path, ref.digest)
        return {'removed': ref.digest, 'kept-tags': []}
    try:
        digest, media_type, data = registry.manifest(ref.path, ref.tag or 'latest')
    except RegistryError as error:
        if error.status == 404:
            raise RegistryError('{}:{} is not in the registry'.format(
                ref.path, ref.tag or 'latest'), 404)
        raise
    others = [t for t in registry.tags(ref.path)
              if t != (ref.tag or 'latest') and registry.manifest_digest(ref.path, t) == digest]
    registry.delete_manifest(ref.path, digest)
    for other in others:
        registry.put_manifest(ref.path, other, media_type, data)
    return {'removed': digest if not others else None, 'kept-tags': others}


# --- garbage collection ------------------------------------------------------------------

def registry_binary(entrypoint, cmd):
    """The registry program inside an image: the entrypoint, unless it is a wrapper
    script (the official images run /entrypoint.sh, which execs /bin/registry)."""
    if entrypoint:
        if entrypoint[0].startswith('/') and not entrypoint[0].endswith('.sh'):
            return entrypoint[0]
    elif cmd and cmd[0].startswith('/') and not cmd[0].endswith(('.sh', '.yml', '.yaml')):
        return cmd[0]
    return '/bin/registry'


def parse_gc_output(text):
    """(blobs marked, eligible blob digests, eligible manifest count) of garbage-collect."""
    eligible = list(dict.fromkeys(GC_ELIGIBLE.findall(text)))
    summary = GC_SUMMARY.search(text)
    marked = int(summary.group(1)) if summary else None
    manifests = int(summary.group(3)) if summary else 0
    return marked, eligible, manifests


def _blob_path(data_dir, digest):
    algorithm, _, hexdigest = digest.partition(':')
    return os.path.join(data_dir, 'docker', 'registry', 'v2', 'blobs', algorithm,
                        hexdigest[:2], hexdigest, 'data')


def blob_sizes(data_dir, digests):
    """Total bytes of the blobs that exist in filesystem storage under data_dir."""
    total = 0
    for digest in digests:
        try:
            total += os.path.getsize(_blob_path(data_dir, digest))
        except OSError:
            pass
    return total


def storage_usage(data_dir):
    """(blob count, bytes) of filesystem storage, or (None, None) without it."""
    root = os.path.join(data_dir, 'docker', 'registry', 'v2', 'blobs')
    if not os.path.isdir(root):
        return None, None
    count = size = 0
    for directory, _, files in os.walk(root):
        if 'data' in files:
            count += 1
            size += os.path.getsize(os.path.join(directory, 'data'))
    return count, size


def _read_link(path):
    try:
        with open(path) as stream:
            return stream.read().strip()
    except OSError:
        return None


REFERRERS_TAG = re.compile(r'^sha256-([0-9a-f]{64})')


def _manifest_document(data_dir, digest):
    try:
        with open(_blob_path(data_dir, digest), 'rb') as stream:
            document = json.loads(stream.read())
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _digests_under(path):
    """Digests of a links folder such as _manifests/revisions/sha256."""
    return {'sha256:' + h for h in _listdir(path) if os.path.exists(os.path.join(path, h, 'link'))}


def untagged_manifests(data_dir):
    """{repository: [digest]} of the manifests delete-untagged removes, read from filesystem
    storage: manifests a tag named once (the tag has moved on) that nothing kept reaches.

    Kept: what a tag names now; content pushed by digest and never tagged (push or mirror of
    image@sha256:..., asked for by digest on purpose); OCI referrers (signatures, SBOMs:
    manifests with a subject) and their subjects, also the subjects the referrers tag
    schema names (sha256-<hex> tags); and every manifest a kept index lists (the
    per-platform manifests of multi-arch images, which registry 2.8's --delete-untagged
    wrongly removes).
    """
    root = os.path.join(data_dir, 'docker', 'registry', 'v2', 'repositories')
    out = {}
    for directory, subdirs, _ in os.walk(root):
        if '_manifests' not in subdirs:
            continue
        repo = os.path.relpath(directory, root)
        subdirs[:] = [d for d in subdirs if not d.startswith('_')]
        manifests = os.path.join(directory, '_manifests')
        revisions = _digests_under(os.path.join(manifests, 'revisions', 'sha256'))
        tags = _listdir(os.path.join(manifests, 'tags'))
        kept, once_tagged = set(), set()
        for tag in tags:
            digest = _read_link(os.path.join(manifests, 'tags', tag, 'current', 'link'))
            if digest:
                kept.add(digest)
            once_tagged |= _digests_under(os.path.join(manifests, 'tags', tag, 'index',
                                                       'sha256'))
            referrers = REFERRERS_TAG.match(tag)
            if referrers:
                kept.add('sha256:' + referrers.group(1))
        documents = {d: _manifest_document(data_dir, d) for d in revisions}
        listed = {}
        for digest, document in documents.items():
            listed[digest] = [e.get('digest') for e in document.get('manifests') or ()
                              if isinstance(e, dict)]
            subject = document.get('subject')
            if isinstance(subject, dict):
                kept |= {digest, subject.get('digest')}
        in_an_index = {child for children in listed.values() for child in children}
        kept |= revisions - once_tagged - in_an_index
        pending = list(kept)
        while pending:
            for child in listed.get(pending.pop(), ()):
                if child not in kept:
                    kept.add(child)
                    pending.append(child)
        untagged = sorted(revisions - kept)
        if untagged:
            out[repo] = untagged
    return out


def remove_manifest(data_dir, repo, digest):
    """On filesystem storage, what the registry's manifest DELETE does (in read-only mode
    the API refuses it): drop the revision link and every tag's history entry of digest.
    The garbage collection that follows frees its blobs."""
    manifests = os.path.join(data_dir, 'docker', 'registry', 'v2', 'repositories', repo,
                             '_manifests')
    hexdigest = digest.partition(':')[2]
    shutil.rmtree(os.path.join(manifests, 'revisions', 'sha256', hexdigest), ignore_errors=True)
    for tag in _listdir(os.path.join(manifests, 'tags')):
        shutil.rmtree(os.path.join(manifests, 'tags', tag, 'index', 'sha256', hexdigest),
                      ignore_errors=True)


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []
