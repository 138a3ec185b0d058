"""Suite-wide rules.

- A skipped test is a failure. Every test here must run on the CI machine
  (scripts/bootstrap.sh installs everything), so a skip can only mean a missing dependency or
  a broken fixture, never a pass.
- scripts/test.sh runs the suite on two pytest-xdist workers, a test module per worker at a
  time (--dist loadfile: a module's deployment stays in one process). The slowest modules
  are handed out first, so that no long module starts alone at the end.
- A test marked `exclusive` runs with no other test running on the machine: one whose
  assertion is a retry time under load (the unit-removal test's 50 clients) would otherwise
  measure the other worker's load. Every test holds a shared lock on the machine while it
  runs (setup, call and teardown, module fixtures included); an exclusive one holds it alone.
"""
import contextlib
import fcntl
import os
import tempfile

import pytest

# Slowest first, as --durations shows them in CI (seconds of setup and calls under two
# workers, cached charm builds): the rest keep pytest's order after these.
SLOWEST_MODULES = [
    'functional/test_relations.py',    # ~700: three units behind haproxy, 50 clients
    'functional/test_bad_input.py',    # ~550: 96 values, two hooks each
    'functional/test_switch.py',       # ~300: builds and deploys the existing charm first
    'functional/test_tls.py',
    'functional/test_core.py',
    'functional/test_storage_s3.py',
    'functional/test_actions_images.py',
    'functional/test_restarts.py',
]

MACHINE_LOCK = os.path.join(tempfile.gettempdir(), 'docker-registry-tests.machine.lock')


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, 'wasxfail'):
        report.outcome = 'failed'
        report.longrepr = 'skipped tests count as failures here: {}'.format(report.longrepr)


def pytest_collection_modifyitems(items):
    def rank(item):
        path = item.nodeid.split('::')[0]
        matches = [i for i, module in enumerate(SLOWEST_MODULES) if path.endswith(module)]
        return matches[0] if matches else len(SLOWEST_MODULES)
    items.sort(key=rank)  # stable: pytest's order within a module and among the rest


@contextlib.contextmanager
def machine_lock(exclusive):
    """Shared or exclusive hold of the machine. A turnstile taken first, in turn, keeps
    shared holders from starving an exclusive one that waits."""
    with open(MACHINE_LOCK + '.turnstile', 'a') as turnstile, open(MACHINE_LOCK, 'a') as lock:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        fcntl.flock(turnstile, fcntl.LOCK_UN)
        yield  # closing the file releases the lock


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    with machine_lock(exclusive=item.get_closest_marker('exclusive') is not None):
        yield
