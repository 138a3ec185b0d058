"""The hook queue: hooks wait here in Juju's order and run one at a time until the model is
quiet. After every hook the scripted remote applications react to the committed state, and
the -relation-changed hooks their writes cause join the queue (at most MAX_EVENTS hooks per
verb, so that a charm and a remote that answer each other for ever fail instead of hang)."""
from . import remotes as R
from . import state as S
from .errors import LocalJujuError

MAX_EVENTS = 2000
# Besides -relation-changed, the hooks that only say "look again": one already waiting in
# the queue covers a second.
COALESCED = ('config-changed', 'leader-settings-changed')


class Events:
    """The hook queue, self.queue (part of Model)."""

    def _enqueue(self, unit, hook, rel=None, remote=None, remote_app=None, departing=None):
        ev = {'unit': unit, 'hook': hook, 'rel': rel, 'remote': remote,
              'remote_app': remote_app or (S.app_of(remote) if remote else None),
              'departing': departing}
        if hook.endswith('-relation-changed') or hook in COALESCED:
            if ev in self.queue:
                return
        self.queue.append(ev)

    def _enqueue_step(self, step):
        """Call step() when the queue reaches it: a change of state between hooks (a
        relation marked broken, a unit leaving it)."""
        self.queue.append({'step': step})

    def _drain(self):
        count = 0
        self._react_remotes()
        while self.queue:
            ev = self.queue.popleft()
            count += 1
            if count > MAX_EVENTS:
                self.queue.clear()
                raise LocalJujuError('hook loop did not settle after %d hooks' % MAX_EVENTS)
            if 'step' in ev:
                ev['step']()
                continue
            self._run_hook(ev)
            self._react_remotes()

    def _react_remotes(self):
        with self.store.transaction() as st:
            changed = []
            for name, rec in st['remotes'].items():
                r = R.make(name, rec, self.dir)
                changed.extend(r.react(st))
            events = []
            for num, runit in changed:
                rel = st['relations'][num]
                for u in rel['members']:
                    if u in st['units'] and runit in rel['seen'].get(u, []):
                        events.append((u, '%s-relation-changed' % rel['endpoints'][S.app_of(u)],
                                       num, runit))
        for u, hook, num, runit in events:
            self._enqueue(u, hook, rel=num, remote=runit)
