"""Running a hook or an action on a unit's machine, as the Juju agent does, and committing
what it wrote through the hook tools when it exits 0.

Hook tools record writes (relation-set, leader-set, status-set, open/close-port,
application-version-set) in the invocation's context file; _commit applies them and returns
the hooks they cause on other units (-relation-changed, leader-settings-changed)."""
import os
import subprocess
import time
import uuid

from . import machine as M
from . import state as S
from .errors import LocalJujuError

SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'


class HookRunner:
    """Hook and action execution (part of Model)."""

    def _env(self, st, unit, ctx_path, hook=None, ev=None, action=None):
        u = st['units'][unit]
        env = {
            # As on a Juju machine: hook tools, then the system. The charm's Python comes
            # from the venv that layer:basic bootstraps next to the charm dir.
            'PATH': '%s:%s' % (self.store.sub('tools'), SYSTEM_PATH),
            'HOME': '/root', 'LANG': 'C.UTF-8', 'LC_ALL': 'C.UTF-8', 'USER': 'root',
            'JUJU_UNIT_NAME': unit, 'JUJU_CHARM_DIR': u['charm_dir'],
            'CHARM_DIR': u['charm_dir'], 'JUJU_MODEL_NAME': st['model'],
            'JUJU_MODEL_UUID': st['uuid'], 'JUJU_PRINCIPAL_UNIT': '',
            'JUJU_MACHINE_ID': str(u['machine']), 'JUJU_AVAILABILITY_ZONE': '',
            'JUJU_VERSION': M.JUJU_VERSION, 'JUJU_CONTEXT_ID': '%s-%s' % (
                unit, uuid.uuid4().hex[:8]),
            'JUJU_DISPATCH_PATH': 'hooks/%s' % hook if hook else '',
            'LOCALJUJU_CONTEXT': ctx_path,
            'LOCALJUJU_LOG': self.store.log_path(unit),  # juju-log.sh appends to it
        }
        if hook:
            env['JUJU_HOOK_NAME'] = hook
        wheels = st['apps'][S.app_of(unit)].get('wheels')
        if wheels:
            env['PIP_FIND_LINKS'] = wheels  # see localjuju.wheels
        if ev and ev.get('rel') is not None:
            rel = st['relations'][ev['rel']]
            env['JUJU_RELATION'] = rel['endpoints'][S.app_of(unit)]
            env['JUJU_RELATION_ID'] = S.rel_id_for(st, ev['rel'], S.app_of(unit))
            env['JUJU_REMOTE_UNIT'] = ev.get('remote') or ''
            others = [a for a in rel['endpoints'] if a != S.app_of(unit)]
            env['JUJU_REMOTE_APP'] = ev.get('remote_app') or (others[0] if others else
                                                              S.app_of(unit))
            if ev.get('departing'):
                env['JUJU_DEPARTING_UNIT'] = ev['departing']
        if action:
            env['JUJU_ACTION_NAME'] = action['name']
            env['JUJU_ACTION_UUID'] = action['uuid']
            env['JUJU_ACTION_TAG'] = 'action-%s' % action['id']
        return env

    def _context(self, st, unit, ev=None, action_id=None):
        d = self.store.sub('contexts')
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, '%s-%s.json' % (unit.replace('/', '-'), uuid.uuid4().hex))
        data = {'model_dir': self.dir, 'unit': unit, 'hook': ev and ev['hook'],
                'relation': None, 'relation_id': None, 'relation_name': None,
                'remote_unit': None, 'remote_app': None, 'departing_unit': None,
                'action': action_id,
                'pending': {'rel_units': {}, 'rel_apps': {}, 'status': None, 'app_status': None,
                            'status_calls': [], 'ports': None, 'leader': {}, 'version': None},
                'action_data': {'results': {}, 'failed': None, 'log': []}}
        if ev and ev.get('rel') is not None:
            rel = st['relations'][ev['rel']]
            data['relation'] = ev['rel']
            data['relation_id'] = S.rel_id_for(st, ev['rel'], S.app_of(unit))
            data['relation_name'] = rel['endpoints'][S.app_of(unit)]
            data['remote_unit'] = ev.get('remote')
            data['remote_app'] = ev.get('remote_app')
            data['departing_unit'] = ev.get('departing')
        S.write_json(path, data)
        return path

    def _exec(self, st, unit, argv, env, log_path):
        u = st['units'][unit]
        cwd = u['charm_dir']
        if self.machines:
            m = st['machines'][str(u['machine'])]
            if not M.pid_alive(m.get('holder_pid')):
                raise LocalJujuError('machine %s of %s is not running' % (u['machine'], unit))
            full = M.nsenter_argv(m['holder_pid'], cwd=cwd) + argv
        else:
            full = argv
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        out_path = log_path + '.out'
        timeout = float(os.environ.get('LOCALJUJU_HOOK_TIMEOUT', '1800'))
        with open(out_path, 'wb') as out:
            proc = subprocess.Popen(full, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
                out.write(b'\nlocaljuju: killed after %ds\n' % int(timeout))
                rc = 124
        with open(out_path, 'rb') as f:
            output = f.read().decode(errors='replace')
        os.unlink(out_path)
        with open(log_path, 'a') as f:
            f.write(output)
        return rc, output

    def _execute(self, st, unit, parts, ctx_path, env, missing):
        """Run the unit's charm file at parts (['hooks', name], ['actions', name]) with its
        context file; (exit code, output, the context as the hook tools left it), and the
        context file gone. missing: (exit code, output) when the charm has no such file."""
        path = os.path.join(st['units'][unit]['charm_dir'], *parts)
        try:
            if os.path.exists(path):
                rc, output = self._exec(st, unit, [path], env, self.store.log_path(unit))
            else:
                rc, output = missing
            return rc, output, S.read_json(ctx_path)
        finally:
            for p in (ctx_path, ctx_path + '.lock'):
                if os.path.exists(p):
                    os.unlink(p)

    def _run_hook(self, ev):
        unit, hook = ev['unit'], ev['hook']
        with self.store.unit_lock(unit):
            with self.store.transaction() as st:
                if unit not in st['units']:
                    return None
                if ev.get('rel') is not None:
                    rel = st['relations'].get(ev['rel'])
                    if rel is None:
                        return None
                    if rel.get('broken') and not (hook.endswith('-relation-departed') or
                                                  hook.endswith('-relation-broken')):
                        return None
                    seen = rel['seen'].setdefault(unit, [])
                    if hook.endswith('-relation-joined') and ev['remote'] not in seen:
                        seen.append(ev['remote'])
                    if hook.endswith('-relation-departed') and ev['remote'] in seen:
                        seen.remove(ev['remote'])
            self.store.log(unit, 'running %s%s' % (hook, ' (remote %s)' % ev['remote']
                                                   if ev.get('remote') else ''))
            self._say('%s: running %s hook%s' % (unit, hook, ' for %s' % ev['remote']
                                                  if ev.get('remote') else ''))
            ctx_path = self._context(st, unit, ev)
            rc, output, ctx = self._execute(st, unit, ['hooks', hook], ctx_path,
                                            self._env(st, unit, ctx_path, hook=hook, ev=ev),
                                            missing=(0, ''))
            followups = self._commit(unit, hook, ctx, rc)
        if rc != 0:
            self._say('%s: hook %s failed (exit %d):\n%s' % (unit, hook, rc, output[-3000:]))
        for f in followups:
            self._enqueue(**f)
        return rc

    def _commit(self, unit, hook, ctx, rc, action=False):
        """Apply a finished hook's pending writes (rc == 0) or drop them; return follow-ups."""
        followups = []
        now = time.time()
        with self.store.transaction() as st:
            u = st['units'].get(unit)
            if u is None:
                return []
            app = st['apps'][S.app_of(unit)]
            if not action:
                u['hooks_run'].append([hook, rc])
                del u['hooks_run'][:-500]
            if rc != 0:
                if not action:
                    u['hook_error'] = hook
                    u['history'].append(['error', 'hook failed: "%s"' % hook, now])
                    self.store.log(unit, 'hook %s failed with exit status %d' % (hook, rc))
                return []
            p = ctx['pending']
            was_error = u.get('hook_error')
            if not action:
                u['hook_error'] = None
            for call in p.get('status_calls', []):
                if call['application']:
                    app['app_status'] = {'status': call['status'], 'message': call['message']}
                    continue
                u['workload'] = {'status': call['status'], 'message': call['message']}
                last = u['history'][-1] if u['history'] else None
                if not last or last[0] != call['status'] or last[1] != call['message']:
                    u['history'].append([call['status'], call['message'], now])
            if was_error and not action:
                w = u['workload']
                last = u['history'][-1]
                if last[0] != w['status'] or last[1] != w['message']:
                    u['history'].append([w['status'], w['message'], now])
            del u['history'][:-200]
            if p.get('ports') is not None:
                u['ports'] = p['ports']
            if p.get('version') is not None:
                app['version'] = p['version']
            if p.get('leader'):
                before = app.get('leader_settings', {})
                app['leader_settings'] = S.merged(before, p['leader'])
                if app['leader_settings'] != before:
                    for other in app['units']:
                        if other != unit and st['units'].get(other, {}).get('life') == 'alive':
                            followups.append({'unit': other, 'hook': 'leader-settings-changed'})
            for section, key in (('rel_units', 'units'), ('rel_apps', 'apps')):
                for num, changes in p.get(section, {}).items():
                    rel = st['relations'].get(num)
                    if rel is None:
                        continue
                    owner = unit if key == 'units' else S.app_of(unit)
                    before = rel[key].get(owner, {})
                    rel[key][owner] = S.merged(before, changes)
                    if rel[key][owner] == before or rel.get('broken'):
                        continue
                    for other in rel['members']:
                        if other == unit or other not in st['units']:
                            continue
                        if key == 'units' and unit not in rel['seen'].get(other, []):
                            continue
                        if key == 'apps' and S.app_of(other) == S.app_of(unit) and \
                                not rel.get('peer'):
                            continue
                        ep = rel['endpoints'][S.app_of(other)]
                        followups.append({
                            'unit': other, 'hook': '%s-relation-changed' % ep, 'rel': num,
                            'remote': unit if key == 'units' else None,
                            'remote_app': S.app_of(unit)})
        return followups
