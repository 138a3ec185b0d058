"""Wheels built once from a charm's wheelhouse, offered to every later unit's bootstrap.

layer:basic bootstraps each unit by pip-installing the charm's wheelhouse (sdists) with no
index, which compiles Cython, PyYAML, MarkupSafe, ... on every unit: minutes per unit. The
runner builds wheels from the same sdists once per wheelhouse content (and machine Python),
keeps them under $LOCALJUJU_WHEEL_CACHE (default /var/cache/localjuju/wheels), and puts that
folder in the hooks' PIP_FIND_LINKS. pip then finds a wheel of the very version each sdist
holds, and every step of the bootstrap (apt, virtualenv, pip install --no-index, charm-env)
still runs on every unit. LOCALJUJU_WHEEL_CACHE=off gives units only their wheelhouse, as
on a real unit (cold deployments, and the proof that the sdists build there).
"""
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile

DEFAULT_ROOT = '/var/cache/localjuju/wheels'
MACHINE_PYTHON = '/usr/bin/python3'
# A unit has no Rust toolchain, and neither does a build here.
NO_RUST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'


class WheelCacheError(Exception):
    pass


def cache_root():
    """The cache folder, or None when caching is off."""
    root = os.environ.get('LOCALJUJU_WHEEL_CACHE', DEFAULT_ROOT)
    return None if root in ('', 'off', '0', 'no') else root


def wheelhouse_key(wheelhouse):
    """Hash of every file of the wheelhouse (names and contents) and the machine Python."""
    digest = hashlib.sha256()
    version = subprocess.run([MACHINE_PYTHON, '-c', 'import sys; print(sys.version)'],
                             capture_output=True, text=True, check=True).stdout
    digest.update(version.encode())
    for name in sorted(os.listdir(wheelhouse)):
        path = os.path.join(wheelhouse, name)
        if name.startswith('.') or not os.path.isfile(path):
            continue  # layer:basic's own markers (.bootstrapped, .upgraded)
        digest.update(name.encode() + b'\0')
        with open(path, 'rb') as f:
            digest.update(hashlib.sha256(f.read()).digest())
    return digest.hexdigest()[:24]


def wheels_for(charm_dir):
    """The folder of wheels for this charm's wheelhouse (built now if missing), or None."""
    root = cache_root()
    wheelhouse = os.path.join(charm_dir, 'wheelhouse')
    if root is None or not os.path.isdir(wheelhouse):
        return None
    folder = os.path.join(root, wheelhouse_key(wheelhouse))
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per key, whoever asks first
        if not os.path.isdir(folder):
            _build(wheelhouse, folder)
    return folder


def _build(wheelhouse, folder):
    sdists = [os.path.join(wheelhouse, n) for n in sorted(os.listdir(wheelhouse))
              if not n.startswith('.') and n.endswith(('.tar.gz', '.zip', '.whl'))]
    env = {'PATH': NO_RUST_PATH, 'HOME': '/root', 'LANG': 'C.UTF-8',
           'PIP_CONFIG_FILE': os.devnull, 'PIP_DISABLE_PIP_VERSION_CHECK': '1'}
    work = tempfile.mkdtemp(prefix='.building-', dir=os.path.dirname(folder))
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, work, True)
        venv = os.path.join(work, 'venv')
        out = os.path.join(work, 'wheels')
        try:
            subprocess.run([MACHINE_PYTHON, '-m', 'venv', venv], env=env, check=True,
                           capture_output=True)
            # Build isolation (for every sdist, setup.py-only ones too) takes each sdist's
            # build requirements from the wheelhouse, as the unit's pip install does.
            subprocess.run([os.path.join(venv, 'bin', 'pip'), 'wheel', '--no-index',
                            '--no-deps', '--use-pep517', '-f', wheelhouse, '-w', out] + sdists,
                           env=env, check=True, capture_output=True, text=True)
        except subprocess.CalledProcessError as e:
            raise WheelCacheError('building wheels from %s failed:\n%s' % (
                wheelhouse, (e.stdout or '') + (e.stderr or '')))
        os.rename(out, folder)
