"""Relations: with the scripted remote applications (integrate, remove-relation, remote-run)
and the peer relations of our applications; units entering and leaving them, with the
-relation-created/joined/changed/departed/broken hooks in Juju's order."""
from . import addresses
from . import remotes as R
from . import state as S
from .errors import LocalJujuError


def add_peer_relation(st, app, ep):
    num = str(st['next_relation'])
    st['next_relation'] += 1
    st['relations'][num] = {
        'id': int(num), 'endpoints': {app: ep},
        'interface': st['apps'][app]['endpoints'][ep]['interface'], 'peer': True,
        'units': {}, 'apps': {app: {}}, 'members': [], 'seen': {}, 'broken': False}
    return num


def remote_address(st, unit):
    return st['remotes'][S.app_of(unit)]['addresses'][unit]


def prefill(st, unit):
    """The settings Juju puts in a unit's bag when it enters a relation."""
    addr = st['units'][unit]['address'] if unit in st['units'] else remote_address(st, unit)
    return {'private-address': addr, 'ingress-address': addr,
            'egress-subnets': '%s/32' % addr}


def split_endpoint(spec):
    """'app:endpoint' -> ('app', 'endpoint'); 'app' -> ('app', None)."""
    name, _, ep = spec.partition(':')
    return name, ep or None


def find_relation(st, a, b):
    (an, aep), (bn, bep) = split_endpoint(a), split_endpoint(b)
    for num, rel in st['relations'].items():
        eps = rel['endpoints']
        if rel.get('peer') or an not in eps or bn not in eps:
            continue
        if (aep and eps[an] != aep) or (bep and eps[bn] != bep):
            continue
        return num
    raise LocalJujuError('relation between %s and %s not found' % (a, b))


def replaced_peer_relations(st, app, old_eps, new_eps):
    """Relation numbers of peer relations the new charm replaces; LocalJujuError when a
    non-peer relation in use would break."""
    replaced = []
    for num, rel in S.by_number(st['relations']):
        ep = rel['endpoints'].get(app)
        if ep is None or rel.get('broken'):
            continue
        old, new = old_eps.get(ep), new_eps.get(ep)
        if new and new['interface'] == rel['interface'] and new['role'] == old['role']:
            continue
        if rel.get('peer'):
            replaced.append(num)
            continue
        why = 'the new charm has no endpoint "%s"' % ep if new is None else \
            'endpoint "%s" would change from %s (%s) to %s (%s)' % (
                ep, rel['interface'], old['role'], new['interface'], new['role'])
        raise LocalJujuError('cannot refresh "%s": would break relation %s (%s); remove '
                             'it first' % (app, ' '.join(
                                 '%s:%s' % kv for kv in sorted(rel['endpoints'].items())),
                                 why))
    return replaced


class Relations:
    """The model's relation verbs and units entering and leaving relations (part of Model)."""

    def integrate(self, a, b):
        self._ensure()
        st = self.load()
        (an, aep), (bn, bep) = split_endpoint(a), split_endpoint(b)
        if an not in st['apps']:
            an, aep, bn, bep = bn, bep, an, aep
        if an not in st['apps']:
            raise LocalJujuError('application "%s" not found' % an)
        if bn in st['apps']:
            raise LocalJujuError('relations between two local applications are not supported')
        kind = st['remotes'][bn]['kind'] if bn in st['remotes'] else bn
        if kind not in R.KINDS:
            raise LocalJujuError('unknown remote application "%s" (known: %s)' %
                                 (bn, ', '.join(sorted(R.KINDS))))
        cls = R.KINDS[kind]
        if bep and bep != cls.endpoint:
            raise LocalJujuError('%s has no endpoint "%s" (it has "%s")' %
                                 (bn, bep, cls.endpoint))
        app = st['apps'][an]
        want_role = {'provides': 'requires', 'requires': 'provides'}[cls.role]
        cands = [ep for ep, s in app['endpoints'].items()
                 if s['interface'] == cls.interface and s['role'] == want_role]
        if aep:
            if aep not in app['endpoints']:
                raise LocalJujuError('application "%s" has no endpoint "%s"' % (an, aep))
            if aep not in cands:
                raise LocalJujuError('endpoint %s:%s does not fit %s:%s (%s)' % (
                    an, aep, bn, cls.endpoint, cls.interface))
        elif len(cands) != 1:
            raise LocalJujuError('no single endpoint of %s fits %s (%s): %s' % (
                an, bn, cls.interface, cands))
        else:
            aep = cands[0]
        for num, rel in st['relations'].items():
            if rel['endpoints'].get(an) == aep and bn in rel['endpoints']:
                raise LocalJujuError('relation %s:%s %s:%s already exists' % (
                    an, aep, bn, cls.endpoint))
        with self.store.transaction() as st:
            if bn not in st['remotes']:
                runit = '%s/0' % bn
                st['remotes'][bn] = {'kind': kind, 'units': [runit],
                                     'addresses': {
                                         runit: addresses.lease(self.dir, addresses.REMOTES)},
                                     'received': {}}
            num = str(st['next_relation'])
            st['next_relation'] += 1
            st['relations'][num] = {
                'id': int(num), 'endpoints': {an: aep, bn: cls.endpoint},
                'interface': cls.interface, 'peer': False, 'units': {},
                'apps': {an: {}, bn: {}}, 'members': [], 'seen': {}, 'broken': False}
            ours = [u for u in st['apps'][an]['units']
                    if st['units'][u].get('life') == 'alive']
            theirs = list(st['remotes'][bn]['units'])
        # the remote units enter first (their side is already up), then ours
        with self.store.transaction() as st:
            rel = st['relations'][num]
            for ru in theirs:
                rel['members'].append(ru)
                rel['units'][ru] = prefill(st, ru)
                rel['seen'][ru] = []
        self._join(num, ours)
        self._drain()
        return self.status()

    def remove_relation(self, a, b):
        st = self.load()
        num = find_relation(st, a, b)
        self._break_relation(num)
        return self.status()

    def remote_run(self, name, verb, *args):
        with self.store.transaction() as st:
            if name not in st['remotes']:
                raise LocalJujuError('remote application "%s" not found' % name)
            r = R.make(name, st['remotes'][name], self.dir)
            out = r.run(st, verb, list(args))
        self._drain()
        return out

    def _enter_relations(self, unit):
        """A started unit enters every existing relation of its application."""
        st = self.load()
        app = S.app_of(unit)
        for num, rel in S.by_number(st['relations']):
            if app in rel['endpoints'] and not rel.get('broken'):
                self._join(num, [unit])

    def _join(self, num, units):
        """units enter relation num: relation-created, then joined/changed both ways."""
        with self.store.transaction() as st:
            rel = st['relations'][num]
            before = list(rel['members'])
            for u in units:
                if u not in rel['members']:
                    rel['members'].append(u)
                    rel['units'][u] = prefill(st, u)
                    rel['seen'].setdefault(u, [])
            ours = set(st['units'])
        for u in units:
            if u in ours:
                ep = rel['endpoints'][S.app_of(u)]
                self._enqueue(u, '%s-relation-created' % ep, rel=num)
        all_members = before + [u for u in units if u not in before]
        pairs = []
        for u in units:
            for v in all_members:
                if v == u or (not rel.get('peer') and S.app_of(v) == S.app_of(u)):
                    continue
                for pair in ((v, u), (u, v)):
                    if pair not in pairs:
                        pairs.append(pair)
        for me, other in pairs:
            if me in ours:
                ep = rel['endpoints'][S.app_of(me)]
                self._enqueue(me, '%s-relation-joined' % ep, rel=num, remote=other)
                self._enqueue(me, '%s-relation-changed' % ep, rel=num, remote=other)

    def _break_relation(self, num):
        st = self.load()
        rel = st['relations'][num]
        ours = [u for u in rel['members'] if u in st['units']]

        def mark():
            # the remote side leaves scope: remotes stop reacting, no more -changed
            with self.store.transaction() as st:
                r = st['relations'][num]
                r['broken'] = True
                r['members'] = [m for m in r['members'] if m in st['units']]

        def finish():
            with self.store.transaction() as st:
                st['relations'].pop(num, None)
        self._enqueue_step(mark)
        for u in ours:
            ep = rel['endpoints'][S.app_of(u)]
            for v in list(rel['seen'].get(u, [])):
                self._enqueue(u, '%s-relation-departed' % ep, rel=num, remote=v, departing=v)
            self._enqueue(u, '%s-relation-broken' % ep, rel=num)
        self._enqueue_step(finish)
        self._drain()

    def _leave_relations(self, unit):
        """Queue a dying unit's way out of every relation: it sees everyone depart, the
        others see it depart, then it leaves the relation."""
        st = self.load()
        app = S.app_of(unit)
        for num, rel in S.by_number(st['relations']):
            if unit not in rel['members']:
                continue
            ep = rel['endpoints'][app]
            for v in list(rel['seen'].get(unit, [])):
                self._enqueue(unit, '%s-relation-departed' % ep, rel=num, remote=v, departing=unit)
            for other in rel['members']:
                if other != unit and other in st['units'] and unit in rel['seen'].get(other, []):
                    oep = rel['endpoints'][S.app_of(other)]
                    self._enqueue(other, '%s-relation-departed' % oep, rel=num, remote=unit,
                                  departing=unit)
            self._enqueue(unit, '%s-relation-broken' % ep, rel=num)

            def leave(num=num):
                with self.store.transaction() as st:
                    r = st['relations'].get(num)
                    if r is None:
                        return
                    if unit in r['members']:
                        r['members'].remove(unit)
                    r['units'].pop(unit, None)
                    r['seen'].pop(unit, None)
            self._enqueue_step(leave)
