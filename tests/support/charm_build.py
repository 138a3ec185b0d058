"""The charm under test is the one users get: scripts/build-charm.sh (charm-tools with the
real upstream layers). A build takes minutes, so it is made once per content of its inputs
(the layer's files, the upstream archives, the build script) and reused while they stay the
same: `python -m tests.support.charm_build` prints the path of a build that is current.
"""
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
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


def _files(path):
    if os.path.isfile(path):
        yield path
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != '__pycache__')
        for name in sorted(files):
            if not name.endswith('.pyc'):
                yield os.path.join(root, name)


def inputs_digest():
    digest = hashlib.sha256()
    paths = [p for entry in LAYER_INPUTS for p in _files(os.path.join(REPO, entry))]
    if os.path.isdir(UPSTREAM):
        paths += [os.path.join(UPSTREAM, n) for n in sorted(os.listdir(UPSTREAM))]
    for path in paths:
        digest.update(os.path.relpath(path, REPO).encode() + b'\0')
        with open(path, 'rb') as f:
            digest.update(hashlib.sha256(f.read()).digest())
    return digest.hexdigest()


def built_charm():
    """Path of a build of the current sources, building it when there is none."""
    os.makedirs(BUILD_ROOT, exist_ok=True)
    charm = os.path.join(BUILD_ROOT, 'docker-registry')
    stamp = charm + '.inputs-sha256'
    with open(os.path.join(BUILD_ROOT, '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        wanted = inputs_digest()
        try:
            with open(stamp) as f:
                if f.read().strip() == wanted and os.path.isdir(charm):
                    return charm
        except FileNotFoundError:
            pass
        # Built aside and swapped in, so that a deployment copying the previous build (another
        # test session of this checkout) never sees half of each.
        aside = tempfile.mkdtemp(prefix='.next-', dir=BUILD_ROOT)
        try:
            subprocess.run(['bash', os.path.join(REPO, 'scripts', 'build-charm.sh'), aside],
                           check=True, stdout=subprocess.DEVNULL)
            if os.path.exists(charm):
                os.rename(charm, os.path.join(aside, 'previous'))
            os.rename(os.path.join(aside, 'docker-registry'), charm)
        finally:
            shutil.rmtree(aside, ignore_errors=True)
        with open(stamp, 'w') as f:
            f.write(wanted + '\n')
    return charm


if __name__ == '__main__':
    sys.stdout.write(built_charm() + '\n')
