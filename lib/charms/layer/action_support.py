"""What the image actions share: parameters, the one-at-a-time lock, our registry's client,
progress, results and failures.

Every failure an operator can cause or meet ends in action_fail with a message, never a
traceback; no message ever holds a credential (none is put in one). The Juju side goes
through hook_tools, so that an action starts without charmhelpers.
"""
import contextlib
import fcntl
import json
import os
import time

from charms.layer import hook_tools, registry_access
from charms.layer import registry_paths as paths
from charms.layer.registry_api import Registry, RegistryError
from charms.layer.registry_container import DockerError
from charms.layer.registry_copy import CopyError
from charms.layer.registry_refs import InvalidReference
from charms.layer.registry_validation import normalize

# action-set passes values as arguments: keep each well under the kernel's 128 KiB limit.
MAX_RESULT = 64 * 1024


class ActionError(Exception):
    """A failure to report as is."""


class Busy(ActionError):
    pass


class Lock:
    """Exclusive, non-blocking: a second mutating action fails at once, naming the first."""

    def __init__(self, action, path=paths.IMAGE_ACTIONS_LOCK):
        self.action, self.path, self._fd = action, path, None

    def __enter__(self):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode('utf-8', 'replace').strip() or 'another action'
            os.close(fd)
            raise Busy('Busy: {} is running; image actions that change the registry run one '
                       'at a time, try again when it has finished'.format(holder))
        os.ftruncate(fd, 0)
        os.write(fd, '{} (pid {})'.format(self.action, os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc):
        os.ftruncate(self._fd, 0)
        os.close(self._fd)
        self._fd = None


def lock_held(path=paths.IMAGE_ACTIONS_LOCK):
    """A mutating image action runs now."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the lock taken to look
    return False


def log(message):
    """Progress the operator sees while the action runs (action-log: Juju keeps it with the
    action's record)."""
    hook_tools.action_log(message)


class Progress:
    """Rate-limited progress lines."""

    def __init__(self, interval=2.0, sink=log):
        self.interval, self.sink, self._last = interval, sink, 0.0

    def __call__(self, message, force=False):
        now = time.monotonic()
        if force or now - self._last >= self.interval:
            self._last = now
            self.sink(message)


def params():
    return hook_tools.action_get()


def config():
    """The charm's options as the hooks read them (registry_validation.normalize)."""
    return normalize(hook_tools.config())


def fail(message):
    """Mark the action failed with message (results set later still count)."""
    hook_tools.action_fail(message)


@contextlib.contextmanager
def about(name):
    """An invalid reference met in the block is parameter name's: the message says so."""
    try:
        yield
    except InvalidReference as error:
        raise ActionError('{}: {}'.format(name, error)) from None


def text_param(values, name, default=''):
    value = values.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ActionError('{} must be a string'.format(name))
    if '\x00' in value:
        raise ActionError('{} holds a NUL character'.format(name))
    return value.strip()


def bool_param(values, name, default=False):
    value = values.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ('true', 'false', 'yes', 'no'):
        return value.lower() in ('true', 'yes')
    raise ActionError('{} must be true or false'.format(name))


def int_param(values, name, default, low, high):
    value = values.get(name, default)
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise ActionError('{} must be a whole number'.format(name))
    if isinstance(values.get(name), bool) or not low <= value <= high:
        raise ActionError('{} must be between {} and {}'.format(name, low, high))
    return value


def unit_path(value, name, must_exist=True):
    """An absolute path on the unit."""
    if not value or not os.path.isabs(value) or '\x00' in value:
        raise ActionError('{} must be an absolute path on the unit'.format(name))
    if must_exist and not os.path.exists(value):
        raise ActionError('{} {} does not exist on the unit'.format(name, value))
    return os.path.normpath(value)


def our_registry():
    """(Registry client of the unit's own registry, its client netloc)."""
    settings = config()

    def unit_address():
        return hook_tools.ingress_address('docker-registry')

    def proxy_addresses():
        return [address for _, address in hook_tools.related_addresses('website')]

    access = registry_access.access(settings, unit_address)
    # The unit reaches its registry by a local address its certificate may not name; the
    # chain is still checked. With tls-client-auth the registry wants the unit's certificate.
    return Registry(access.url, access.username, access.password, ca_file=access.ca_file,
                    check_hostname=False, client_cert=access.client_cert,
                    client_key=access.client_key), \
        registry_access.client_netloc(settings, proxy_addresses, unit_address)


def set_results(results, name):
    """action-set the results; a value too big for action-set goes to a 0600 file on the unit
    whose path is given instead (with the first part of the value)."""
    flat = {}
    for key, value in results.items():
        if not isinstance(value, str):
            value = json.dumps(value, sort_keys=True)
        if len(value.encode()) > MAX_RESULT:
            os.makedirs(paths.RESULTS_DIR, mode=0o700, exist_ok=True)
            path = os.path.join(paths.RESULTS_DIR, '{}-{}-{}.txt'.format(
                name, key, time.strftime('%Y%m%dT%H%M%S')))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, 'w') as stream:
                stream.write(value)
            flat[key + '-file'] = path
            value = value.encode()[:MAX_RESULT // 4].decode('utf-8', 'ignore') + \
                '\n... (truncated; all of it is in {})'.format(path)
        flat[key] = value
    hook_tools.action_set(flat)


def run(main, name):
    """Run main(params) -> results; expected failures become action_fail messages."""
    hook_tools.prefetch()
    try:
        return _outcome(main, name)
    finally:
        hook_tools.wait_for_log()


def _outcome(main, name):
    try:
        results = main(params())
    except (ActionError, RegistryError, CopyError, DockerError, InvalidReference) as error:
        fail(str(error))
        return False
    except OSError as error:
        fail('{} failed: {}'.format(name, error))
        return False
    except Exception as error:  # a bug: say what, without a traceback in the results
        hook_tools.log('{} failed: {!r}'.format(name, error), 'ERROR')
        fail('{} failed unexpectedly: {}: {}'.format(
            name, type(error).__name__, error))
        return False
    if results is not None:
        set_results(results, name)
    return True
