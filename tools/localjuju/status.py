"""What the model shows: `status` (juju status with every relation's bags), a unit's status
history, the hooks it ran and its log."""
from . import machine as M
from . import state as S


class Status:
    """The model's status views (part of Model)."""

    def status(self):
        if not self.store.exists():
            return {'model': self.name, 'applications': {}, 'relations': [], 'machines': {}}
        st = self.load()
        apps = {}
        for name, a in sorted(st['apps'].items()):
            units = {}
            for un in sorted(a['units'], key=S.unit_sort_key):
                u = st['units'][un]
                s, m = S.unit_display_status(u)
                units[un] = {
                    'workload-status': {'current': s, 'message': m},
                    'status': s, 'message': m,
                    'address': u['address'], 'public-address': u['address'],
                    'machine': str(u['machine']), 'open-ports': list(u['ports']),
                    'leader': a.get('leader') == un,
                }
            apps[name] = {
                'charm': a.get('charm_name') or name, 'charm-dir': a['charm_dir'],
                'version': a.get('version', ''), 'units': units,
                'application-status': a.get('app_status'),
            }  # no config: like `juju status`, which would show secrets otherwise
        for name, r in sorted(st['remotes'].items()):
            apps[name] = {
                'charm': r['kind'], 'remote': True,
                'units': {u: {'address': r['addresses'][u], 'status': 'active',
                              'workload-status': {'current': 'active', 'message': ''}}
                          for u in r['units']},
                'received': r.get('received', {}),
            }
            for k in ('configured', 'services', 'ca_generation'):
                if k in r:
                    apps[name][k] = r[k]
        rels = []
        for num, rel in S.by_number(st['relations']):
            rels.append({
                'id': rel['id'],
                'endpoints': ['%s:%s' % kv for kv in sorted(rel['endpoints'].items())],
                'interface': rel['interface'], 'peer': bool(rel.get('peer')),
                'units': {u: dict(b) for u, b in sorted(rel['units'].items())},
                'applications': {a: dict(b) for a, b in sorted(rel['apps'].items())},
            })
        machines = {}
        for n, m in S.by_number(st['machines']):
            machines[n] = {'unit': m.get('unit'), 'address': m['address'],
                           'series': m.get('series', 'noble'),
                           'holder-pid': m.get('holder_pid'), 'dockerd-pid': M.dockerd_pid(m),
                           'running': M.alive(m) if self.machines else None}
        return {'model': st['model'], 'applications': apps, 'relations': rels,
                'machines': machines}

    def status_history(self, unit):
        st = self.load()
        return [(h[0], h[1]) for h in st['units'][unit]['history']]

    def hooks_run(self, unit):
        return [tuple(h) for h in self.load()['units'][unit]['hooks_run']]

    def log(self, unit):
        try:
            with open(self.store.log_path(unit)) as f:
                return f.read()
        except FileNotFoundError:
            return ''
