"""The few Juju hook tools the image actions use, called directly.

An action starts once per operator command (push once per image), and importing
charmhelpers' hookenv costs 0.1-0.3 s of that start: it imports distutils, which setuptools
provides. These calls need only subprocess and json. Each tool call costs 20-60 ms, mostly
process start: reads are kept for the action's life (nothing they read changes during it),
prefetch() runs the ones every action makes at the same time, and action_log() does not wait.
Values go to the tools as arguments, as hookenv passes them; no credential is ever one.
"""
import json
import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

# What every image action reads: its parameters, the config, the unit's address and the
# reverse proxies (the address clients use).
STARTUP_READS = (('action-get',), ('config-get', '--all'), ('network-get', 'docker-registry'),
                 ('relation-ids', 'website'))

_reads = {}
_reads_lock = threading.Lock()
_logging = None  # the action-log still running


def _run(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True,
                          timeout=120).stdout


def _read(*argv):
    """The JSON a read-only tool prints, once per action; a failure is raised each time."""
    with _reads_lock:
        if argv in _reads:
            known = _reads[argv]
            if isinstance(known, Exception):
                raise known
            return known
    try:
        out = _run(*argv, '--format=json').strip()
        value = json.loads(out) if out else None
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        value = error
    with _reads_lock:
        _reads[argv] = value
    return _read(*argv)


def prefetch(reads=STARTUP_READS):
    """Make the reads at the same time (their errors are raised when they are used)."""
    def attempt(argv):
        try:
            _read(*argv)
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
    with ThreadPoolExecutor(max_workers=len(reads)) as pool:
        list(pool.map(attempt, reads))


def config():
    return _read('config-get', '--all') or {}


def action_get():
    return _read('action-get') or {}


def action_set(values):
    _run('action-set', *['{}={}'.format(k, v) for k, v in values.items()])


def action_fail(message):
    _run('action-fail', message)


def action_log(message):
    """Progress the operator sees while the action runs: started, not waited for (the
    previous line is, so that lines keep their order); never fails the action."""
    global _logging
    wait_for_log()
    try:
        _logging = subprocess.Popen(['action-log', message], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
    except OSError:
        _logging = None


def wait_for_log():
    """Before the action ends: the last progress line is written."""
    global _logging
    if _logging is not None:
        try:
            _logging.wait(timeout=60)
        except subprocess.TimeoutExpired:
            _logging.kill()
        _logging = None


def log(message, level='INFO'):
    _run('juju-log', '-l', level, message)


def application_name():
    return os.environ['JUJU_UNIT_NAME'].split('/')[0]


def ingress_address(binding):
    """The unit's ingress address on binding, else its private address."""
    try:
        return _read('network-get', binding)['ingress-addresses'][0]
    except (KeyError, IndexError, TypeError, ValueError, subprocess.CalledProcessError):
        return _run('unit-get', 'private-address').strip()


def related_addresses(endpoint):
    """[(unit, address)] of the remote units on every relation of endpoint."""
    found = []
    for rid in _read('relation-ids', endpoint) or []:
        for unit in _read('relation-list', '-r', rid) or []:
            data = _read('relation-get', '-r', rid, '-', unit) or {}
            address = data.get('ingress-address') or data.get('private-address')
            if address:
                found.append((unit, address))
    return found
