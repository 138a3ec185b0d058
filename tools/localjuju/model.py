"""The local Juju agent stand-in: a model of applications, units on their own machines and
relations with scripted remote applications, kept in a state directory (state.py).

Model is the composition of one mixin per concern, all working on the same store and hook
queue:
  applications.py  deploy, config, refresh (charms.py: the built charm's files and metadata)
  units.py         add-unit, remove-unit, hook, update-status, reboot-machine,
                   upgrade-machine, resolved, destroy
  relations.py     integrate, remove-relation, remote-run; units entering and leaving
  actions.py       run (parameters checked against actions.yaml)
  events.py        the hook queue, drained until the model is quiet
  hooks.py         running one hook or action and committing what it wrote
  status.py        status, status history, hooks run, the unit's log
"""
import collections
import os

from . import state as S
from .actions import Actions
from .applications import Applications
from .errors import LocalJujuError
from .events import Events
from .hooks import HookRunner
from .hooktool import TOOLS
from .relations import Relations
from .status import Status
from .units import Units

__all__ = ['LocalJujuError', 'Model']


class Model(Applications, Units, Relations, Actions, Events, HookRunner, Status):
    """A local model.  All methods return plain data."""

    def __init__(self, home=None, name=None, machines=None, echo=False):
        self.name = name or os.environ.get('LOCALJUJU_MODEL') or 'local'
        self.home = S.home_dir(home)
        self.dir = S.model_dir(self.home, self.name)
        self.store = S.Store(self.dir)
        if machines is None and self.store.exists():
            machines = self.store.load().get('use_machines', True)
        if machines is None:
            machines = os.environ.get('LOCALJUJU_MACHINES', '1') not in ('0', 'no', 'false')
        self.machines = machines
        self.echo = echo
        self.queue = collections.deque()  # the hook queue (events.py)

    def _ensure(self):
        """Create the model's state and its hook-tool symlinks, if not there yet."""
        self.store.init(self.name)
        if 'use_machines' not in self.load():
            with self.store.transaction() as st:
                st['use_machines'] = bool(self.machines)
        tools = self.store.sub('tools')
        os.makedirs(tools, exist_ok=True)
        here = os.path.dirname(os.path.abspath(__file__))
        for t in TOOLS:
            # juju-log has a shell implementation of its own (see juju-log.sh).
            target = os.path.join(here, 'juju-log.sh' if t == 'juju-log' else 'hooktool.py')
            os.chmod(target, os.stat(target).st_mode | 0o111)
            p = os.path.join(tools, t)
            if os.path.islink(p) and os.readlink(p) == target:
                continue
            tmp = p + '.tmp'
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(target, tmp)
            os.rename(tmp, p)

    def _say(self, msg):
        if self.echo:
            print(msg, flush=True)

    def load(self):
        return self.store.load()
