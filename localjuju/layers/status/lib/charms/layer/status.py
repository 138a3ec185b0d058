"""Stand-in for layer:status' ``charms.layer.status`` module.

API: ``WorkloadState`` (MAINTENANCE, BLOCKED, WAITING, ACTIVE),
``maintenance(msg)``, ``maint(msg)``, ``blocked(msg)``, ``waiting(msg)``,
``active(msg)``, ``status_set(workload_state, msg)``.

Semantics as upstream:
  * maintenance is sent to Juju at once;
  * blocked / waiting / active are collected during the hook and only one is
    sent when the hook ends (hookenv.atexit): the first state in the order
    blocked, waiting, active that was requested; among that state's
    messages the one from the layer latest in the charm's layer order wins,
    the layer being the file name of the calling reactive/lib module (a
    name upstream compares against layer.yaml ``includes`` + charm name;
    otherwise ties keep the last call);
  * outside a hook run (not initialised, or already finalised) the status
    is sent immediately;
  * with the ``status.patch-hookenv`` layer option (default true)
    ``subprocess.call(['status-set', ...])`` -- what
    charmhelpers.core.hookenv.status_set does -- is routed here.
"""
import errno
import inspect
import subprocess
from enum import Enum
from pathlib import Path

import yaml
from charmhelpers.core import hookenv

_real_call = subprocess.call
_state = {'initialized': False, 'finalized': False, 'pending': {}}


class WorkloadState(Enum):
    # declaration order is the precedence order
    MAINTENANCE = 'maintenance'
    BLOCKED = 'blocked'
    WAITING = 'waiting'
    ACTIVE = 'active'


def maintenance(message):
    status_set(WorkloadState.MAINTENANCE, message)


def maint(message):
    maintenance(message)


def blocked(message):
    status_set(WorkloadState.BLOCKED, message)


def waiting(message):
    status_set(WorkloadState.WAITING, message)


def active(message):
    status_set(WorkloadState.ACTIVE, message)


def status_set(workload_state, message):
    state = WorkloadState(workload_state)
    if state is WorkloadState.MAINTENANCE:
        _send(state, message)
        return
    _state['pending'].setdefault(state, []).append((_caller_layer(), message))
    if not _state['initialized'] or _state['finalized']:
        _finalize()


def _caller_layer():
    for frame in inspect.stack():
        path = Path(frame.filename)
        if path.parent.name not in ('reactive', 'layer', 'charms'):
            continue
        if path.stem == 'status':
            continue
        return path.stem
    return None


def _initialize():
    if _state['initialized']:
        return
    from charms.layer import options
    if options.get('status', 'patch-hookenv') in (None, True):
        subprocess.call = _routed_call
    hookenv.atexit(_finalize)
    _state['initialized'] = True


def _layer_order():
    try:
        with (Path(hookenv.charm_dir()) / 'layer.yaml').open() as fp:
            includes = (yaml.safe_load(fp) or {}).get('includes') or []
    except OSError:
        includes = []
    return list(includes) + [hookenv.charm_name()]


def _finalize():
    if _state['initialized']:
        _state['finalized'] = True
    order = _layer_order()

    def rank(record):
        name = record[0]
        return order.index(name) if name in order else 0

    for state in WorkloadState:
        records = _state['pending'].get(state)
        if records:
            _send(state, sorted(records, key=rank)[-1][1])
            return


def _send(state, message):
    hookenv.log('status-set: {}: {}'.format(state.value, message),
                hookenv.INFO)
    try:
        _real_call(['status-set', state.value, message])
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def _routed_call(cmd, *args, **kwargs):
    # (upstream would choke on `status-set --application`: passed through)
    if isinstance(cmd, list) and len(cmd) == 3 and cmd[0] == 'status-set':
        status_set(cmd[1], cmd[2])
        return 0
    return _real_call(cmd, *args, **kwargs)
