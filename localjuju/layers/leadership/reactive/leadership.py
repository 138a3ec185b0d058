"""Stand-in for layer:leadership's reactive/leadership.py.

At the start of every hook (hookenv.atstart) toggles ``leadership.is_leader``
from is-leader, and compares leader-get with the settings remembered from
the previous hook: ``leadership.changed.<key>`` / ``leadership.changed``
for keys whose value changed (deleted keys count as changed to None),
``leadership.set.<key>`` for keys that have a value.
"""
from charmhelpers.core import hookenv, unitdata
from charms import reactive
from charms.reactive import toggle_flag
from charms.leadership import KV_PREFIX, leader_get, leader_set  # noqa: F401


def initialize_leadership_state():
    leader = hookenv.is_leader()
    hookenv.log('Initializing Leadership Layer ({})'.format(
        'is leader' if leader else 'is follower'))
    toggle_flag('leadership.is_leader', leader)
    known = unitdata.kv().getrange(KV_PREFIX, strip=True)
    current = dict(hookenv.leader_get() or {})
    for key in known:
        current.setdefault(key, None)
    changed_any = False
    for key, value in current.items():
        changed = value != known.get(key)
        changed_any = changed_any or changed
        toggle_flag('leadership.changed.' + key, changed)
        toggle_flag('leadership.set.' + key, value is not None)
    toggle_flag('leadership.changed', changed_any)
    unitdata.kv().update(current, prefix=KV_PREFIX)


# The module may be imported more than once (reactive.leadership and via
# other layers); register the start-up hook only once per process.
if not getattr(reactive, '_leadership_registered', False):
    hookenv.atstart(initialize_leadership_state)
    reactive._leadership_registered = True
