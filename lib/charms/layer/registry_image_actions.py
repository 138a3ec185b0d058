"""The image actions: parameters in, results out. actions/<name> only calls these.

push, mirror, delete and import change the registry and hold the lock (one at a time);
images and export only read it. They start without the hook environment (charmhelpers):
garbage-collect, which reconfigures the registry, is in registry_garbage_collect.
"""
import ipaddress
import os
import platform as host_platform
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from charms.layer import (hook_tools, registry_container, registry_copy, registry_images,
                          registry_refs)
from charms.layer import registry_paths as paths
from charms.layer.action_support import (ActionError, Lock, Progress, about, bool_param, config,
                                         fail, int_param, log, our_registry, text_param,
                                         unit_path)
from charms.layer.registry_api import Registry, RegistryError

MACHINE_ARCH = {'x86_64': 'amd64', 'aarch64': 'arm64', 'ppc64le': 'ppc64le',
                's390x': 's390x'}


# --- sources ------------------------------------------------------------------------------

def _loopback(host):
    name = host.rsplit(':', 1)[0] if host.count(':') == 1 else host
    if name == 'localhost':
        return True
    try:
        return ipaddress.ip_address(name.strip('[]')).is_loopback
    except ValueError:
        return False


class Sources:
    """Registry clients of source hosts, made once per host: HTTPS first; plain HTTP for
    loopback hosts (as docker does) or with insecure=true. A host that cannot be reached
    is not tried again for every image of a list. The credentials go to credentials_host,
    the host they were given for, only: any other host is asked anonymously."""

    def __init__(self, credentials_host=None, username=None, password=None, insecure=False):
        self._credentials_host = credentials_host
        self._username, self._password, self._insecure = username, password, insecure
        self._clients, self._lock = {}, threading.Lock()

    def get(self, host):
        with self._lock:
            if host not in self._clients:
                try:
                    self._clients[host] = self._connect(host)
                except RegistryError as error:
                    self._clients[host] = error
            if isinstance(self._clients[host], RegistryError):
                raise self._clients[host]
            return self._clients[host]

    def _connect(self, host):
        problems = []
        schemes = ['https'] + (['http'] if self._insecure or _loopback(host) else [])
        ours = host == self._credentials_host
        for scheme in schemes:
            client = Registry('{}://{}'.format(scheme, host), self._username if ours else None,
                              self._password if ours else None, verify=not self._insecure)
            try:
                client.ping()
                return client
            except RegistryError as error:
                if error.status is not None:  # it answered: a registry, with this problem
                    raise
                problems.append(str(error))
        raise RegistryError('cannot reach registry {}: {}'.format(host, problems[-1]))


def _credentials(values):
    username = text_param(values, 'username') or None
    password = values.get('password') or None
    if password is not None and not isinstance(password, str):
        raise ActionError('password must be a string')
    if bool(username) != bool(password):
        raise ActionError('username and password go together')
    return username, password


def _credentials_host(values, refs, username):
    """The one source host mirror's credentials are for: credentials-host=, else the only
    host the list names. None without credentials."""
    given = text_param(values, 'credentials-host')
    if not username:
        return None
    if given:
        return registry_refs.source_location(registry_refs.parse(given + '/x'))[0]
    hosts = sorted({registry_refs.source_location(registry_refs.parse(r))[0] for r in refs})
    if len(hosts) > 1:
        raise ActionError('username and password go to one source registry, and the list '
                          'names {}: give credentials-host= (one of {})'.format(
                              len(hosts), ', '.join(hosts)))
    return hosts[0] if hosts else None


def _engine_has(image):
    try:
        registry_container.docker('image', 'inspect', '--format', '{{.Id}}', image, timeout=60)
        return True
    except registry_container.DockerError:
        return False


# --- push ---------------------------------------------------------------------------------

def push(values):
    image = text_param(values, 'image')
    if not image:
        raise ActionError('image is required, e.g. image=rocks.canonical.com/cdk/pause:3.9')
    engine_only = image.startswith('docker-daemon:')
    if engine_only:
        image = image[len('docker-daemon:'):]
    with about('image'):
        ref = registry_refs.parse(image)
    pull = bool_param(values, 'pull')
    strip_host = bool_param(values, 'strip-host')
    username, password = _credentials(values)
    insecure = bool_param(values, 'insecure')
    dst, netloc = our_registry()
    tag = text_param(values, 'tag')
    if tag:
        with about('tag'):
            own = registry_refs.own_name(tag, netloc)
        repo, dst_tag = own.path, own.tag or 'latest'
    else:
        repo = registry_refs.destination(ref, strip_host)
        dst_tag = ref.tag or (None if ref.digest else 'latest')
    with Lock('push'):
        use_engine = engine_only or (not pull and _engine_has(image))
        if use_engine:
            if ref.digest and not ref.tag and not tag:
                raise ActionError('an image of the docker engine needs tag= to be named')
            log('Pushing {} from the unit\'s docker engine'.format(image))
            copied = _push_from_engine(dst, image, repo, dst_tag)
            source = 'docker-daemon:' + image
        else:
            host, path = registry_refs.source_location(ref)
            log('Copying {} from {}'.format(image, host))
            src = Sources(host, username, password, insecure).get(host)
            copier = registry_copy.Copier(dst)
            try:
                copied = copier.copy(registry_copy.RegistrySource(src, path),
                                     ref.digest or ref.tag or 'latest', repo, dst_tag)
            finally:
                copier.close()
            source = image
    destination = registry_refs.reference_string(repo, dst_tag, None if dst_tag else
                                                 copied.digest, netloc)
    return {'destination': destination, 'digest': copied.digest, 'source': source,
            'platforms': ','.join(copied.platforms),
            'result': 'Pushed {} as {}'.format(image, destination)}


def _push_from_engine(dst, image, repo, tag):
    work = tempfile.mkdtemp(prefix='push-')
    try:
        archive = os.path.join(work, 'image.tar')
        registry_container.docker('save', '-o', archive, image, timeout=3600)
        entries, source = registry_copy.docker_archive_entries(archive)
        try:
            _, config_name, layers = entries[0]
            return registry_copy.push_docker_image(dst, source, repo, [tag], config_name,
                                                   layers)
        finally:
            source.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- mirror -------------------------------------------------------------------------------

# Besides registry_paths.SECRET_FOLDERS: the credential folders of any user.
PRIVATE_FOLDERS = ('.ssh', '.docker', '.gnupg', '.aws', '.kube', '.config')
MAX_LIST_FILE = 4 << 20


def _read_list_file(path, arches):
    """The text of file=, refused unless every entry is an image reference with a tag or
    digest (lines may have comments and container-images.txt labels): the action quotes
    entries in its results, so a file that is something else, a key or a password for
    example, must never be echoed. The refusal names line numbers, never content."""
    path = unit_path(path, 'file', must_exist=False)
    real = os.path.realpath(path)
    parts = real.split('/')
    if any(real == d or real.startswith(d + '/') for d in paths.SECRET_FOLDERS) or \
            any(p in PRIVATE_FOLDERS for p in parts):
        raise ActionError('file {} holds secrets, not an image list'.format(path))
    unit_path(path, 'file')  # it exists
    if not os.path.isfile(real) or os.path.getsize(real) > MAX_LIST_FILE:
        raise ActionError('file {} is not an image list (a text file of at most {} MiB)'
                          .format(path, MAX_LIST_FILE >> 20))
    try:
        with open(real, encoding='utf-8') as stream:
            text = stream.read()
    except UnicodeDecodeError:
        raise ActionError('file {} is not an image list: it is not UTF-8 text'.format(path))
    _, problems = registry_refs.parse_image_list(text, arches, versioned=True)
    if problems:
        lines = sorted({p.line for p in problems})
        raise ActionError('file {} is not an image list: no image reference with a tag or '
                          'digest on line {}{} (not quoted: the file may hold secrets)'.format(
                              path, ', '.join(map(str, lines[:10])),
                              ' ...' if len(lines) > 10 else ''))
    return text


def image_list(values):
    """References to mirror from images=, file= and the image-list resource."""
    arches = registry_refs.split_list(text_param(values, 'arches')) or \
        list(registry_refs.ARCHES)
    unknown = [arch for arch in arches if arch not in registry_refs.KNOWN_ARCHES]
    if unknown:
        raise ActionError('arches: {!r} is not an architecture images are built for ({})'
                          .format(unknown[0][:64], ', '.join(registry_refs.KNOWN_ARCHES)))
    text = text_param(values, 'images').replace(',', ' ')
    path = text_param(values, 'file')
    if path:
        text += '\n' + _read_list_file(path, arches)
    if bool_param(values, 'resource'):
        # Imported here: hook_tools has no resource-get, and charmhelpers would slow every
        # action's start.
        from charmhelpers.core import hookenv
        try:
            resource = hookenv.resource_get('image-list')
        except Exception:
            resource = None
        if not resource:
            raise ActionError('resource=true but no image-list resource is attached')
        with open(resource, encoding='utf-8', errors='replace') as stream:
            text += '\n' + stream.read()
    sections = registry_refs.split_list(text_param(values, 'sections'))
    refs, problems = registry_refs.parse_image_list(text, arches, sections)
    if not refs and not problems:
        raise ActionError('no images to mirror: give images=, file= or resource=true')
    return refs, problems


def _prefix(values):
    """The prefix= parameter of mirror and import: '' or a valid repository path."""
    prefix = text_param(values, 'prefix')
    if prefix:
        with about('prefix'):
            registry_refs.check_repository(prefix.strip('/'))
    return prefix


def mirror(values):
    refs, problems = image_list(values)
    prefix = _prefix(values)
    strip_host = bool_param(values, 'strip-host')
    workers = int_param(values, 'parallel', 4, 1, 32)
    username, password = _credentials(values)
    sources = Sources(_credentials_host(values, refs, username), username, password,
                      bool_param(values, 'insecure'))
    dst, netloc = our_registry()
    copier = registry_copy.Copier(dst, blob_workers=max(8, 2 * workers))
    lines = {'copied': [], 'skipped': [], 'failed': []}
    invalid = ['{} (invalid entry)'.format(p) for p in problems]
    done, lock, started = [0], threading.Lock(), time.monotonic()
    # Every image is in the results; the log gets a line a second and the last one (each
    # line is a hook tool call of 30-60 ms: one per image added up to seconds).
    progress = Progress(interval=1.0)

    def mirror_one(text):
        try:
            ref = registry_refs.parse(text)
            repo = registry_refs.destination(ref, strip_host, prefix)
            tag = ref.tag or (None if ref.digest else 'latest')
            reference = ref.digest or ref.tag or 'latest'
            host, path = registry_refs.source_location(ref)
            source = registry_copy.RegistrySource(sources.get(host), path)
            present = dst.manifest_digest(repo, tag or ref.digest)
            # The source's digest is asked for (a HEAD, which Docker Hub does not count as a
            # pull) only when there is something to compare it with: else the copy's GET of
            # the manifest says it, one round trip fewer per new image.
            digest = ref.digest or (source.registry.manifest_digest(path, reference)
                                    if present else None)
            if present and present == digest:
                outcome, line = 'skipped', '{} (already present, {})'.format(text, digest)
            else:
                copied = copier.copy(source, reference, repo, tag)
                outcome = 'copied'
                line = '{} -> {}/{} ({})'.format(text, netloc, registry_refs.reference_string(
                    repo, tag, None if tag else copied.digest), copied.digest)
        except (RegistryError, registry_copy.CopyError, registry_refs.InvalidReference,
                OSError) as error:
            outcome, line = 'failed', '{}: {}'.format(text, error)
        with lock:
            lines[outcome].append(line)
            done[0] += 1
            progress('[{}/{}] {} {}'.format(done[0], len(refs), outcome, line),
                     force=done[0] == len(refs))

    with Lock('mirror'):
        log('Mirroring {} images, {} at a time'.format(len(refs), workers))
        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(mirror_one, refs))
        finally:
            copier.close()
    lines['failed'] = invalid + lines['failed']
    seconds = time.monotonic() - started
    summary = '{} copied, {} skipped, {} failed of {} images in {:.1f}s ({} MiB moved)'.format(
        len(lines['copied']), len(lines['skipped']), len(lines['failed']),
        len(refs) + len(problems), seconds, copier.stats['bytes-copied'] // (1 << 20))
    results = {'summary': summary, 'copied': '\n'.join(sorted(lines['copied'])),
               'skipped': '\n'.join(sorted(lines['skipped'])),
               'failed': '\n'.join(lines['failed']),
               'blobs': dict(copier.stats)}
    if lines['failed']:
        fail('{} of {} images failed: {}'.format(
            len(lines['failed']), len(refs) + len(problems), summary))
    return results


# --- images -------------------------------------------------------------------------------

def images(values):
    repository = text_param(values, 'repository')
    tag = text_param(values, 'tag')
    page_size = int_param(values, 'page-size', 1000, 1, 10000)
    registry, netloc = our_registry()
    rows, repos = registry_images.inventory(registry, repository, tag, page_size,
                                            progress=Progress())
    total = sum(row['size'] for row in rows)
    return {'summary': '{} tags in {} repositories at {}'.format(len(rows), repos, netloc),
            'text': registry_images.inventory_text(rows),
            'json': rows, 'repositories': str(repos), 'tags': str(len(rows)),
            'bytes': str(total)}


# --- delete -------------------------------------------------------------------------------

def delete(values, name='delete'):
    items = registry_refs.split_list(text_param(values, 'image'))
    if not items:
        raise ActionError('image is required: repository:tag or repository@digest '
                          '(several separated by spaces)')
    if not config().get('storage-delete'):
        raise ActionError('{} needs storage-delete=true (juju config {} storage-delete=true); '
                          'the registry refuses deletions otherwise'.format(
                              name, hook_tools.application_name()))
    registry, netloc = our_registry()
    with about('image'):
        refs = [registry_refs.own_name(item, netloc) for item in items]
    removed, failed = [], []
    with Lock(name):
        for item, ref in zip(items, refs):
            try:
                outcome = registry_images.delete(registry, ref)
            except RegistryError as error:
                failed.append('{}: {}'.format(item, error))
                continue
            line = item
            if outcome['kept-tags']:
                line += ' (untagged; the manifest stays for tags {})'.format(
                    ', '.join(outcome['kept-tags']))
            else:
                line += ' (manifest {} removed)'.format(outcome['removed'])
            removed.append(line)
            log('removed ' + line)
    results = {'removed': '\n'.join(removed), 'failed': '\n'.join(failed),
               'summary': '{} removed, {} failed; run garbage-collect to free the space'
               .format(len(removed), len(failed))}
    if failed:
        fail('{} of {} could not be removed: {}'.format(
            len(failed), len(items), '; '.join(failed)))
    return results


# --- export and import --------------------------------------------------------------------

def _unit_platform():
    return 'linux/' + MACHINE_ARCH.get(host_platform.machine(), host_platform.machine())


def export(values):
    items = registry_refs.split_list(text_param(values, 'images'))
    if not items:
        raise ActionError('images is required: repository[:tag] entries separated by spaces')
    kind = text_param(values, 'format', 'oci') or 'oci'
    if kind not in ('oci', 'docker-archive'):
        raise ActionError('format must be oci or docker-archive')
    platform = text_param(values, 'platform') or _unit_platform()
    if not registry_refs.PLATFORM.match(platform):
        raise ActionError('platform must be os/architecture[/variant], e.g. linux/amd64')
    path = text_param(values, 'path')
    if path:
        path = unit_path(path, 'path', must_exist=False)
        if not os.path.isdir(os.path.dirname(path)):
            raise ActionError('the directory of {} does not exist'.format(path))
    else:
        os.makedirs(paths.EXPORT_DIR, mode=0o700, exist_ok=True)
        path = os.path.join(paths.EXPORT_DIR,
                            'images-{}.tar'.format(time.strftime('%Y%m%dT%H%M%S')))
    if os.path.exists(path):
        raise ActionError('{} already exists; give another path'.format(path))
    registry, netloc = our_registry()
    wanted = []
    for item in items:
        with about('images'):
            ref = registry_refs.own_name(item, netloc)
        if ref.digest:
            raise ActionError('{}: export names images by tag'.format(item))
        tags = [ref.tag] if ref.tag else sorted(registry.tags(ref.path))
        if not tags:
            raise ActionError('{} is not in the registry'.format(item))
        wanted += [(ref.path, t) for t in tags]
    writer = registry_copy.ArchiveWriter(path, kind)
    exported = []
    try:
        for repo, tag in wanted:
            try:
                copied = writer.add(registry, repo, tag, platform)
            except RegistryError as error:
                if error.status == 404:
                    raise ActionError('{}:{} is not in the registry'.format(repo, tag))
                raise
            exported.append('{}:{} {}'.format(repo, tag, copied.digest))
            log('exported {}:{}'.format(repo, tag))
        writer.close()
    except BaseException:
        writer.abort()
        os.unlink(path)  # a partial archive is of no use
        raise
    return {'path': path, 'format': kind, 'images': '\n'.join(exported),
            'bytes': str(os.path.getsize(path)),
            'summary': '{} images written to {} ({})'.format(
                len(exported), path, registry_images.human_size(os.path.getsize(path)))}


def _archive_name(name, repository):
    """Reference of an archive entry: its name, or repository:name when it is only a tag."""
    if name and ('/' in name or ':' in name):
        return registry_refs.parse(name)
    if not repository:
        raise ActionError('the archive names an image only {!r}: give repository= to name it'
                          .format(name or '(no name)'))
    return registry_refs.parse('{}:{}'.format(repository, name or 'latest'))


def import_(values):
    path = unit_path(text_param(values, 'path'), 'path')
    prefix = _prefix(values)
    strip_host = bool_param(values, 'strip-host')
    repository = text_param(values, 'repository')
    if repository:
        with about('repository'):
            registry_refs.check_repository(repository)
    try:
        kind = registry_copy.archive_kind(path)
    except registry_copy.CopyError as error:
        raise ActionError('path: {}'.format(error)) from None
    dst, netloc = our_registry()
    imported = []
    with Lock('import'):
        if kind == 'oci':
            source = registry_copy.LayoutSource(path)
            copier = registry_copy.Copier(dst)
            try:
                for name, descriptor in registry_copy.layout_entries(source):
                    ref = _archive_name(name, repository)
                    repo = registry_refs.destination(ref, strip_host, prefix)
                    copied = copier.copy(source, descriptor['digest'], repo, ref.tag or 'latest')
                    imported.append('{}/{}:{} {}'.format(netloc, repo, ref.tag or 'latest',
                                                         copied.digest))
                    log('imported ' + imported[-1])
            finally:
                copier.close()
                source.close()
        else:
            entries, source = registry_copy.docker_archive_entries(path)
            try:
                for repo_tags, config_name, layers in entries:
                    names = [_archive_name(n, repository) for n in repo_tags] or \
                        [_archive_name('', repository)]
                    by_repo = {}
                    for ref in names:
                        by_repo.setdefault(registry_refs.destination(ref, strip_host, prefix),
                                           []).append(ref.tag or 'latest')
                    for repo, tags in by_repo.items():
                        copied = registry_copy.push_docker_image(dst, source, repo, tags,
                                                                 config_name, layers)
                        imported += ['{}/{}:{} {}'.format(netloc, repo, t, copied.digest)
                                     for t in tags]
                        log('imported {}/{}:{}'.format(netloc, repo, ','.join(tags)))
            finally:
                source.close()
    return {'format': kind, 'images': '\n'.join(imported),
            'summary': '{} images imported from {}'.format(len(imported), path)}
