"""Loopback addresses leased host-wide, so that models in different homes never collide.

Every model (its machines and its scripted remote units) binds real sockets on 127.0.0.N.
Two test sessions, or a test run next to the README's deployment, must not hand out the same
address. A lease is a file named after the address holding the owning model's directory;
a lease whose owner directory no longer exists (a model removed without `destroy`) is stale
and taken over.
"""
import os

from localjuju import state as S

LEASE_DIR = os.environ.get('LOCALJUJU_LEASE_DIR', '/run/localjuju/addresses')
MACHINES = range(11, 100)   # 127.0.0.11 ... : units' machines
REMOTES = range(101, 251)   # 127.0.0.101 ... : scripted remote applications


class NoAddressLeft(Exception):
    pass


def _lease_path(address):
    return os.path.join(LEASE_DIR, address)


def _owner(address):
    try:
        with open(_lease_path(address)) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def lease(owner_dir, pool):
    """Lease the lowest free 127.0.0.N with N in pool for the model at owner_dir."""
    owner_dir = os.path.abspath(owner_dir)
    os.makedirs(LEASE_DIR, exist_ok=True)
    with S.flock(os.path.join(LEASE_DIR, '.lock')):
        for n in pool:
            address = '127.0.0.%d' % n
            owner = _owner(address)
            if owner is not None and os.path.isdir(owner):
                continue
            S.atomic_write(_lease_path(address), owner_dir + '\n')
            return address
    raise NoAddressLeft('no free loopback address in 127.0.0.%d-%d' % (pool[0], pool[-1]))


def release_all(owner_dir):
    """Give back every address the model at owner_dir holds."""
    owner_dir = os.path.abspath(owner_dir)
    if not os.path.isdir(LEASE_DIR):
        return
    with S.flock(os.path.join(LEASE_DIR, '.lock')):
        for name in os.listdir(LEASE_DIR):
            if not name.startswith('.') and _owner(name) == owner_dir:
                os.unlink(_lease_path(name))
