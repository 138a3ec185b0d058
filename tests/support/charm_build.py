"""The charm under test is the one users get: scripts/build-charm.sh (charm-tools with the
real upstream layers). A build takes minutes, so it is made once per content of its inputs
(the layer's files, the upstream archives, the build script) and kept under a folder named
by their digest, for any checkout and test session on the machine (BUILD_ROOT): `python -m
tests.support.charm_build` prints the path of a build of the current inputs.

`existing_charm()` builds the charm deployments switch from (the Charmed Kubernetes
docker-registry charm: src/ of ../shared/upstream/charm-docker-registry.tar.gz) with the same
script and offline layers, cached the same way (`python -m tests.support.charm_build
--existing`). The archive is unpacked into a temporary folder.
"""
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# What charm-tools takes from this layer (layer.yaml excludes everything else).
LAYER_INPUTS = ('layer.yaml', 'metadata.yaml', 'config.yaml', 'actions.yaml', 'wheelhouse.txt',
                'README.md', 'reactive', 'lib', 'actions', 'templates',
                'scripts/build-charm.sh', 'scripts/finish-build.py')
# Outside the checkout (charm-tools refuses a build inside its source), shared by every
# checkout: a build is found by the digest of its inputs.
BUILD_ROOT = os.environ.get('CHARM_BUILD_DIR') or '/var/cache/docker-registry-charm-builds'
# Builds of other inputs kept besides the current one (other branches, older commits).
KEEP_BUILDS = 6
UPSTREAM = os.environ.get('UPSTREAM_DIR', os.path.join(REPO, '..', 'shared', 'upstream'))
EXISTING_ARCHIVE = 'charm-docker-registry.tar.gz'
# What the existing charm's build takes from this checkout (its layer is in UPSTREAM).
EXISTING_INPUTS = ('scripts/build-charm.sh', 'scripts/finish-build.py')


def _files(path):
    if os.path.isfile(path):
        yield path
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != '__pycache__')
        for name in sorted(files):
            if not name.endswith('.pyc'):
                yield os.path.join(root, name)


def inputs_digest(entries=LAYER_INPUTS):
    """Digest of these files of the checkout and of every upstream archive."""
    digest = hashlib.sha256()
    paths = [p for entry in entries for p in _files(os.path.join(REPO, entry))]
    if os.path.isdir(UPSTREAM):
        paths += [os.path.join(UPSTREAM, n) for n in sorted(os.listdir(UPSTREAM))]
    for path in paths:
        digest.update(os.path.relpath(path, REPO).encode() + b'\0')
        with open(path, 'rb') as f:
            digest.update(hashlib.sha256(f.read()).digest())
    return digest.hexdigest()


def _cached_build(root, wanted, layer=None):
    """root/<wanted>/docker-registry: the build of inputs with digest wanted, made by
    scripts/build-charm.sh when there is none. layer: a context manager giving the folder of
    the layer to build (default: this checkout's)."""
    os.makedirs(root, exist_ok=True)
    home = os.path.join(root, wanted)
    charm = os.path.join(home, 'docker-registry')
    with open(os.path.join(root, '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isdir(charm):
            os.utime(home)  # recently used: kept by _prune
            return charm
        # Built aside and renamed into place whole: a folder named by the digest is complete.
        aside = tempfile.mkdtemp(prefix='.next-', dir=root)
        try:
            with layer or contextlib.nullcontext() as layer_dir:
                subprocess.run(['bash', os.path.join(REPO, 'scripts', 'build-charm.sh'), aside] +
                               ([layer_dir] if layer_dir else []),
                               check=True, stdout=subprocess.DEVNULL)
            os.chmod(aside, 0o755)  # mkdtemp's 0700 would hide the build from other users
            os.rename(aside, home)
        finally:
            shutil.rmtree(aside, ignore_errors=True)
        _prune(root, keep=home)
    return charm


def _prune(root, keep):
    """Remove all but the KEEP_BUILDS most recently used builds besides keep."""
    builds = [os.path.join(root, name) for name in os.listdir(root)
              if len(name) == 64 and os.path.join(root, name) != keep]
    builds.sort(key=os.path.getmtime, reverse=True)
    for old in builds[KEEP_BUILDS:]:
        shutil.rmtree(old, ignore_errors=True)


def built_charm():
    """Path of a build of the current sources, building it when there is none."""
    return _cached_build(BUILD_ROOT, inputs_digest())


@contextlib.contextmanager
def _existing_layer(archive):
    """The existing charm's layer (src/ of archive), unpacked into a temporary folder."""
    dest = os.path.realpath(tempfile.mkdtemp(prefix='existing-charm-'))
    try:
        _unpack(archive, dest)
        yield os.path.join(dest, 'src')
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def _unpack(archive, dest):
    """Extract archive into dest, refusing members that would land outside it (Python 3.11.2
    has no extraction filters)."""
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            target = os.path.realpath(os.path.join(dest, member.name))
            link_escapes = (member.issym() or member.islnk()) and (
                os.path.isabs(member.linkname) or '..' in member.linkname.split('/'))
            if not target.startswith(dest + os.sep) or member.isdev() or link_escapes:
                raise ValueError('unsafe member in {}: {}'.format(archive, member.name))
        tar.extractall(dest)


def existing_charm():
    """Path of a build of the existing charm (the one a switch starts from)."""
    archive = os.path.join(UPSTREAM, EXISTING_ARCHIVE)
    if not os.path.isfile(archive):
        raise FileNotFoundError(archive)
    # The archive is one of UPSTREAM's files, which the digest covers.
    return _cached_build(os.path.join(BUILD_ROOT, 'existing'), inputs_digest(EXISTING_INPUTS),
                         _existing_layer(archive))


if __name__ == '__main__':
    # --existing: the existing charm's build instead of this one's
    sys.stdout.write((existing_charm() if '--existing' in sys.argv[1:] else built_charm()) + '\n')
