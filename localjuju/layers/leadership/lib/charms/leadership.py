"""Stand-in for layer:leadership's ``charms.leadership`` module.

``leader_set(settings=None, **kw)`` (leader only: a no-op elsewhere, as
upstream's ``@not_unless('leadership.is_leader')`` only logs) and
``leader_get(attribute=None)``.  On the leader, leader_set immediately sets
``leadership.changed`` / ``leadership.changed.<key>`` for changed keys and
toggles ``leadership.set.<key>`` (None unsets); values are remembered in
unitdata under ``leadership.settings.`` so the next hook's
initialisation (reactive/leadership.py) sees them as already known.
"""
from charmhelpers.core import hookenv, unitdata
from charms.reactive import not_unless, set_flag, toggle_flag

__all__ = ['leader_get', 'leader_set']

KV_PREFIX = 'leadership.settings.'


@not_unless('leadership.is_leader')
def leader_set(*args, **kw):
    if len(args) > 1:
        raise TypeError('leader_set() takes 1 positional argument but '
                        '{} were given'.format(len(args)))
    settings = dict(args[0]) if args else {}
    settings.update(kw)
    known = unitdata.kv().getrange(KV_PREFIX, strip=True)
    for key, value in settings.items():
        if value != known.get(key):
            set_flag('leadership.changed')
            set_flag('leadership.changed.' + key)
        toggle_flag('leadership.set.' + key, value is not None)
    hookenv.leader_set(settings)
    unitdata.kv().update(settings, prefix=KV_PREFIX)


def leader_get(attribute=None):
    return hookenv.leader_get(attribute)
