"""The charm under test is the one users get: scripts/build-charm.sh (charm-tools with the
real upstream layers). A build takes minutes, so it is made once per content of its inputs
(the layer's files, the upstream archives, the build script) and reused while they stay the
same: `python -m tests.support.charm_build` prints the path of a build that is current.

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
# Outside the checkout (charm-tools refuses a build inside its source), one per checkout.
BUILD_ROOT = os.environ.get('CHARM_BUILD_DIR') or '/var/tmp/charm-builds-' + hashlib.sha256(
    REPO.encode()).hexdigest()[:8]
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
    """root/docker-registry, built by scripts/build-charm.sh unless its stamp says it was
    built from inputs with digest wanted. layer: a context manager giving the folder of the
    layer to build (default: this checkout's)."""
    os.makedirs(root, exist_ok=True)
    charm = os.path.join(root, 'docker-registry')
    stamp = charm + '.inputs-sha256'
    with open(os.path.join(root, '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(stamp) as f:
                if f.read().strip() == wanted and os.path.isdir(charm):
                    return charm
        except FileNotFoundError:
            pass
        # Built aside and swapped in, so that a deployment copying the previous build (another
        # test session of this checkout) never sees half of each.
        aside = tempfile.mkdtemp(prefix='.next-', dir=root)
        try:
            with layer or contextlib.nullcontext() as layer_dir:
                subprocess.run(['bash', os.path.join(REPO, 'scripts', 'build-charm.sh'), aside] +
                               ([layer_dir] if layer_dir else []),
                               check=True, stdout=subprocess.DEVNULL)
            if os.path.exists(charm):
                os.rename(charm, os.path.join(aside, 'previous'))
            os.rename(os.path.join(aside, 'docker-registry'), charm)
        finally:
            shutil.rmtree(aside, ignore_errors=True)
        with open(stamp, 'w') as f:
            f.write(wanted + '\n')
    return charm


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
