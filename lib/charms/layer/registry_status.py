"""The unit's status: what an Outcome is and the one way to show it.

Handlers, the start and stop actions and garbage-collect describe where the registry stands
with an Outcome and hand it to show(); progress(message) is the maintenance message shown at
once while work goes on.

In a hook, the last Outcome shown is the one the hook ends with. layer:status (through which
hookenv.status_set goes in a hook) would show the most severe status requested during the
hook, but a later handler can resolve what an earlier one reported (a certificate written
after configure_registry waited for it), so it is handed one status, at the end. An action
has no end of hook to wait for: it shows at once.
"""
from collections import namedtuple

from charmhelpers.core import hookenv

ACTIVE, WAITING, BLOCKED = 'active', 'waiting', 'blocked'
# state: ACTIVE, the registry serves the current configuration; WAITING, it will once
# something arrives (a certificate, the leader's secret); BLOCKED, the operator must act.
Outcome = namedtuple('Outcome', 'state message')

STOPPED = Outcome(BLOCKED, 'Registry stopped by the stop action; run the start action')
SERIES_UPGRADE = Outcome(BLOCKED, 'Series upgrade in progress')
WAITING_FOR_SECRET = Outcome(WAITING, 'Waiting for the leader to share http.secret')
# Longer messages are cut: they may quote operator values (validation bounds those; this is
# the last guard against flooding `juju status`).
MAX_MESSAGE = 1024

# What this hook has shown so far, in order.
_shown = []


def show(outcome):
    message = outcome.message
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE - 3] + '...'
    if hookenv.action_name():
        hookenv.status_set(outcome.state, message)
        return
    if not _shown:
        hookenv.atexit(_show_last)
    _shown.append((outcome.state, message))


def _show_last():
    state, message = _shown[-1]
    hookenv.status_set(state, message)
    _shown.clear()


def progress(message):
    """The maintenance message shown while the unit works, at once (layer:status passes
    maintenance straight through)."""
    hookenv.status_set('maintenance', message)
