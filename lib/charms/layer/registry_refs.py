"""Image references and image lists (pure: strings in, values out).

parse() validates a reference with the Docker reference grammar; destination() applies the
naming rule of the push and mirror actions; parse_image_list() reads the lists operators
feed to mirror (one reference a line, or Charmed Kubernetes' container-images.txt).
"""
import fnmatch
import re
from collections import namedtuple

_COMPONENT = r'[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
_DOMAIN = (r'(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9]'
           r'(?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?')
_PATH_RE = re.compile(r'^{0}(?:/{0})*$'.format(_COMPONENT))
_DOMAIN_RE = re.compile(r'^{}$'.format(_DOMAIN))
_TAG_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$')
_DIGEST_RE = re.compile(r'^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$')

DOCKER_HUB = 'docker.io'
DOCKER_HUB_API = 'registry-1.docker.io'
ARCHES = ('amd64', 'arm64', 'ppc64le', 's390x')
# Every architecture an image index may name (Go's GOARCH values images are built for).
KNOWN_ARCHES = ARCHES + ('386', 'arm', 'riscv64', 'loong64', 'mips', 'mipsle', 'mips64',
                         'mips64le', 'ppc64', 'wasm')
# os/architecture[/variant], as in linux/arm64/v8.
PLATFORM = re.compile(r'^[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?$')

# host: registry host[:port] as written, or None; path: repository path as written;
# tag and digest: None when absent.
Reference = namedtuple('Reference', 'host path tag digest')
_PLACEHOLDER = re.compile(r'\{\{\s*([a-z_]+)\s*\}\}')


class InvalidReference(ValueError):
    pass


class ListProblem(str):
    """'line N: message' of an invalid entry of an image list; .line is N, to report a file
    that may hold secrets without quoting it."""

    def __new__(cls, line, message):
        problem = super().__new__(cls, 'line {}: {}'.format(line, message))
        problem.line = line
        return problem


def _split_host(name):
    first, sep, rest = name.partition('/')
    if sep and ('.' in first or ':' in first or first == 'localhost' or first != first.lower()):
        return first, rest
    return None, name


def parse(text):
    """Reference of 'host[:port]/path[:tag][@digest]'; raises InvalidReference."""
    if not isinstance(text, str) or not text or len(text) > 512:
        raise InvalidReference('invalid image reference: it must be a non-empty string')
    if text != text.strip() or any(c.isspace() for c in text):
        raise InvalidReference('invalid image reference {!r}: spaces are not allowed'.format(text))
    name, digest = text, None
    if '@' in text:
        name, digest = text.split('@', 1)
        if not _DIGEST_RE.match(digest):
            raise InvalidReference('{!r}: invalid digest {!r}'.format(text, digest))
    tag = None
    last = name.rsplit('/', 1)[-1]
    if ':' in last:
        name, tag = name.rsplit(':', 1)
        if not _TAG_RE.match(tag):
            raise InvalidReference('{!r}: invalid tag {!r}'.format(text, tag))
    host, path = _split_host(name)
    if host is not None and not _DOMAIN_RE.match(host):
        raise InvalidReference('{!r}: invalid registry host {!r}'.format(text, host))
    if not _PATH_RE.match(path) or len(path) > 255:
        raise InvalidReference(
            '{!r}: invalid repository name {!r} (lowercase letters, digits, separators '
            '. _ - and /)'.format(text, path))
    return Reference(host, path, tag, digest)


def check_repository(path):
    """Raise InvalidReference unless path is a valid repository name."""
    if not isinstance(path, str) or not _PATH_RE.match(path) or len(path) > 255:
        raise InvalidReference('invalid repository name {!r}'.format(path))
    return path


def source_location(ref):
    """(API host, repository) where a reference is fetched: Docker Hub's names completed."""
    host = ref.host or DOCKER_HUB
    path = ref.path
    if host in (DOCKER_HUB, 'index.docker.io', DOCKER_HUB_API):
        host = DOCKER_HUB_API
        if '/' not in path:
            path = 'library/' + path
    return host, path


def reference_string(path, tag=None, digest=None, host=None):
    out = (host + '/' if host else '') + path
    if tag:
        out += ':' + tag
    if digest:
        out += '@' + digest
    return out


def destination(ref, strip_host=False, prefix=''):
    """Repository path in our registry for a source reference.

    The old charm's rule: the source path as written, host included (a port's colon becomes
    '-', so that the name stays valid), under our address. strip_host drops the host;
    prefix (e.g. 'mirror/') goes in front.
    """
    parts = []
    if prefix:
        parts.append(check_repository(prefix.strip('/')))
    if ref.host and not strip_host:
        parts.append(ref.host.lower().replace(':', '-'))
    parts.append(ref.path)
    return check_repository('/'.join(parts))


def own_name(text, netloc):
    """Reference for our own registry: 'repo[:tag]' or with our netloc in front (dropped)."""
    if netloc and text.startswith(netloc + '/'):
        text = text[len(netloc) + 1:]
    ref = parse(text)
    if ref.host:
        # A host in front that is not ours would be a path component with a dot: allowed
        # only when it is a valid repository component (the push naming rule makes them).
        path = ref.host.lower().replace(':', '-') + '/' + ref.path
        ref = Reference(None, check_repository(path), ref.tag, ref.digest)
    return ref


def parse_image_list(text, arches=ARCHES, sections=None, versioned=False):
    """References in a list: one or more a line (spaces separate), '#' comments, and
    Charmed Kubernetes' container-images.txt lines '<release>-<kind>: ref ref ...'.

    sections: only lines whose '<release>-<kind>' label matches one of these glob patterns
    (unlabelled lines always count). '{{ arch }}' expands to each of arches, and
    '{{ multiarch_workaround }}' to nothing. Returns (references, problems): unique
    references in order, and a ListProblem for each invalid or unexpandable entry.
    versioned: an entry must also name a tag or digest.
    """
    refs, problems, seen = [], [], set()
    for number, raw in enumerate(text.splitlines(), 1):
        # '{{ arch }}' holds spaces: close them up before splitting the line on spaces.
        line = _PLACEHOLDER.sub(lambda m: '{{%s}}' % m.group(1), raw.split('#', 1)[0]).strip()
        if not line:
            continue
        label = None
        head, sep, rest = line.partition(': ')
        if sep and ' ' not in head and '/' not in head:
            label, line = head, rest
        elif line.endswith(':') and ' ' not in line and '/' not in line:
            continue  # a label with nothing after it
        if label and sections and not any(fnmatch.fnmatchcase(label, p) for p in sections):
            continue
        for item in _expand_placeholders(line.split(), arches):
            if isinstance(item, tuple):
                problems.append(ListProblem(number, item[0]))
                continue
            try:
                ref = parse(item)
            except InvalidReference as error:
                problems.append(ListProblem(number, error))
                continue
            if versioned and not (ref.tag or ref.digest):
                problems.append(ListProblem(number, '{!r} names no tag or digest'.format(item)))
                continue
            if item not in seen:
                seen.add(item)
                refs.append(item)
    return refs, problems


def _expand_placeholders(items, arches):
    for item in items:
        names = set(_PLACEHOLDER.findall(item))
        unknown = names - {'arch', 'multiarch_workaround'}
        if unknown:
            yield ('{!r}: unknown placeholder {}'.format(item, ', '.join(sorted(unknown))),)
            continue
        item = _PLACEHOLDER.sub(lambda m: '' if m.group(1) == 'multiarch_workaround'
                                else m.group(0), item)
        if 'arch' in names:
            for arch in arches:
                yield _PLACEHOLDER.sub(arch, item)
        else:
            yield item


def split_list(value):
    """A parameter holding references separated by spaces, commas or newlines."""
    if not value:
        return []
    return [item for item in re.split(r'[\s,]+', value) if item]


def matches(value, pattern):
    """Glob match ('*' and '?'); an empty pattern matches everything."""
    return not pattern or fnmatch.fnmatchcase(value, pattern)
