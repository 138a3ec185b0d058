"""Units and their machines: adding a unit (a machine, then install, leadership,
config-changed, start and the relations it enters), removing one, firing hooks on demand,
series upgrades, `resolved`, and destroying the model."""
import os
import shutil
import time

from . import addresses
from . import charms as C
from . import machine as M
from . import state as S
from .errors import LocalJujuError


class Units:
    """The model's unit and machine verbs (part of Model)."""

    def add_unit(self, app, n=1):
        st = self.load()
        if app not in st['apps']:
            raise LocalJujuError('application "%s" not found' % app)
        self._add_units(app, n)
        return self.status()

    def _add_units(self, app, n):
        new = []
        for _ in range(n):
            with self.store.transaction() as st:
                a = st['apps'][app]
                unit = '%s/%d' % (app, a['next_unit'])
                a['next_unit'] += 1
                mnum = st['next_machine']
                st['next_machine'] += 1
                mdir = self.store.sub('machines', str(mnum))
                address = addresses.lease(self.dir, addresses.MACHINES)
                st['machines'][str(mnum)] = {'number': mnum, 'dir': mdir, 'unit': unit,
                                             'address': address, 'holder_pid': None,
                                             'dockerd_pid': None, 'series': 'noble'}
                udir = self.store.sub('units', unit.replace('/', '-'))
                st['units'][unit] = {
                    'app': app, 'machine': mnum, 'address': address,
                    'charm_dir': os.path.join(udir, 'charm'),
                    'workload': {'status': 'waiting', 'message': 'waiting for machine'},
                    'history': [['waiting', 'waiting for machine', time.time()]],
                    'ports': [], 'hook_error': None, 'hooks_run': [], 'life': 'alive'}
                preload = a.get('preload_image')
                publish_address = address if a.get('publish_ports') else None
                charm_src = a['charm_dir']
            self._say('Adding unit %s on machine %d' % (unit, mnum))
            C.sync_charm(charm_src, st['units'][unit]['charm_dir'])
            if self.machines:
                try:
                    rec = M.create(mdir, mnum, preload_image=preload,
                                   publish_address=publish_address)
                except BaseException:
                    with self.store.transaction() as st:
                        st['units'].pop(unit, None)
                        st['machines'].pop(str(mnum), None)
                    raise
                with self.store.transaction() as st:
                    st['machines'][str(mnum)].update(holder_pid=rec['holder_pid'],
                                                     dockerd_pid=rec['dockerd_pid'])
            with self.store.transaction() as st:
                u = st['units'][unit]
                u['workload'] = {'status': 'maintenance', 'message': 'installing agent'}
                u['history'].append(['maintenance', 'installing agent', time.time()])
                a = st['apps'][app]
                leader = a['leader'] is None or a['leader'] not in st['units']
                if leader:
                    a['leader'] = unit
                a['units'].append(unit)
            self._enqueue(unit, 'install')
            self._enqueue(unit, 'leader-elected' if leader else 'leader-settings-changed')
            self._enqueue(unit, 'config-changed')
            self._enqueue(unit, 'start')
            new.append(unit)
            self._drain()
            self._enter_relations(unit)
            self._drain()
        return new

    def remove_unit(self, unit):
        st = self.load()
        if unit not in st['units']:
            raise LocalJujuError('unit "%s" not found' % unit)
        app = S.app_of(unit)
        with self.store.transaction() as st:
            st['units'][unit]['life'] = 'dying'
        self._leave_relations(unit)
        self._drain()
        self._enqueue(unit, 'stop')
        self._enqueue(unit, 'remove')
        self._drain()
        with self.store.transaction() as st:
            u = st['units'].pop(unit)
            a = st['apps'][app]
            a['units'].remove(unit)
            m = st['machines'].pop(str(u['machine']), None)
            new_leader = None
            if a['leader'] == unit:
                a['leader'] = None
                if a['units']:
                    new_leader = a['units'][0]
                    a['leader'] = new_leader
        if m and self.machines:
            M.destroy(m)
        if new_leader:
            self._enqueue(new_leader, 'leader-elected')
            self._drain()
        return self.status()

    def hook(self, unit, hook, rel=None, remote=None):
        st = self.load()
        if unit not in st['units']:
            raise LocalJujuError('unit "%s" not found' % unit)
        if rel is not None:
            rel = S.rel_num(rel)
        self._enqueue(unit, hook, rel=rel, remote=remote)
        self._drain()
        st = self.load()
        runs = st['units'][unit]['hooks_run']
        return {'unit': unit, 'hook': hook, 'rc': runs[-1][1] if runs else None}

    def update_status(self):
        st = self.load()
        for unit in sorted(st['units'], key=S.unit_sort_key):
            self._enqueue(unit, 'update-status')
        self._drain()
        return self.status()

    def reboot_machine(self, number):
        """Reboot machine `number` (machine.reboot); then, as Juju does after a reboot, its
        unit runs the start hook."""
        m = self.load()['machines'].get(str(number))
        if m is None:
            raise LocalJujuError('machine %s not found' % number)
        self._say('Rebooting machine %s' % number)
        if self.machines:
            rec = M.reboot(m)
            with self.store.transaction() as st:
                st['machines'][str(number)]['dockerd_pid'] = rec['dockerd_pid']
        self._enqueue(m['unit'], 'start')
        self._drain()
        return self.status()

    def upgrade_machine(self, number, phase):
        st = self.load()
        m = st['machines'].get(str(number))
        if m is None:
            raise LocalJujuError('machine %s not found' % number)
        hook = {'prepare': 'pre-series-upgrade', 'complete': 'post-series-upgrade'}.get(phase)
        if not hook:
            raise LocalJujuError('phase must be prepare or complete')
        self._enqueue(m['unit'], hook)
        self._drain()
        return self.status()

    def resolve(self, unit):
        """Clear a unit's hook error (like `juju resolved --no-retry`)."""
        with self.store.transaction() as st:
            u = st['units'][unit]
            if u.get('hook_error'):
                u['hook_error'] = None
                w = u['workload']
                u['history'].append([w['status'], w['message'], time.time()])
        return self.status()

    def destroy(self):
        if not self.store.exists():
            return {'destroyed': self.name}
        st = self.load()
        for unit in sorted(st['units'], key=S.unit_sort_key):
            m = st['machines'].get(str(st['units'][unit]['machine']))
            if not self.machines or (m and M.pid_alive(m.get('holder_pid'))):
                self._enqueue(unit, 'stop')
                self._enqueue(unit, 'remove')
        try:
            self._drain()
        finally:
            st = self.load()
            errors = []
            for n, m in st['machines'].items():
                try:
                    M.destroy(m)
                except Exception as e:  # keep tearing the others down
                    errors.append('machine %s: %s' % (n, e))
            shutil.rmtree(self.dir, ignore_errors=True)
            addresses.release_all(self.dir)
        if errors:
            raise LocalJujuError('; '.join(errors))
        return {'destroyed': self.name}
