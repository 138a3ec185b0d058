"""The local Juju agent stand-in: applications, units, relations and hook sequencing."""
import collections
import copy
import os
import shutil
import subprocess
import tempfile
import time
import uuid

import yaml

from . import addresses
from . import machine as M
from . import remotes as R
from . import state as S
from . import wheels as W
from .hooktool import TOOLS

SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
MAX_EVENTS = 2000


class LocalJujuError(Exception):
    pass


def _ukey(u):
    a, _, n = u.partition('/')
    return (a, int(n) if n.isdigit() else 0)


def _load_yaml(path, default=None):
    try:
        with open(path) as f:
            return yaml.safe_load(f) or default
    except FileNotFoundError:
        return default


def parse_value(text):
    """juju run / config parse k=v values as YAML scalars."""
    try:
        v = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if v is None and text not in ('null', '~') else v


class Model:
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
        self.queue = collections.deque()

    # ---- setup ---------------------------------------------------------------------------

    def _ensure(self):
        self.store.init(self.name)
        if 'use_machines' not in self.load():
            with self.store.transaction() as st:
                st['use_machines'] = bool(self.machines)
        tools = self.store.sub('tools')
        os.makedirs(tools, exist_ok=True)
        target = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'hooktool.py')
        os.chmod(target, os.stat(target).st_mode | 0o111)
        for t in TOOLS:
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

    # ---- charms ---------------------------------------------------------------------------

    @staticmethod
    def _copy_charm(path, out):
        """Copy a built charm (what `charm build` makes) to out, replacing what was there."""
        path = os.path.abspath(path)
        if not os.path.isfile(os.path.join(path, 'metadata.yaml')) or \
                not os.path.isdir(os.path.join(path, 'hooks')):
            hint = ' (a layer: build it first, e.g. scripts/build-charm.sh)' \
                if os.path.exists(os.path.join(path, 'layer.yaml')) else ''
            raise LocalJujuError('%s is not a built charm%s' % (path, hint))
        tmp = tempfile.mkdtemp(prefix='charm-', dir=os.path.dirname(out))
        try:
            copied = os.path.join(tmp, 'charm')
            shutil.copytree(path, copied, symlinks=True)
            if os.path.exists(out):
                shutil.rmtree(out)
            os.rename(copied, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @staticmethod
    def _charm_meta(charm_dir):
        meta = _load_yaml(os.path.join(charm_dir, 'metadata.yaml'), {})
        eps = {}
        for role in ('provides', 'requires', 'peers'):
            for ep, spec in (meta.get(role) or {}).items():
                spec = spec if isinstance(spec, dict) else {'interface': spec}
                eps[ep] = {'role': role, 'interface': spec.get('interface'),
                           'scope': spec.get('scope', 'global')}
        cfg = _load_yaml(os.path.join(charm_dir, 'config.yaml'), {}) or {}
        actions = _load_yaml(os.path.join(charm_dir, 'actions.yaml'), {}) or {}
        return {
            'charm_name': meta.get('name'),
            'endpoints': eps,
            'extra_bindings': list((meta.get('extra-bindings') or {}).keys()),
            'resource_meta': meta.get('resources') or {},
            'options': cfg.get('options') or {},
            'actions': actions,
        }

    def _wheels_for(self, charm_dir):
        if not self.machines:
            return None  # no unit bootstraps a venv on the host
        try:
            return W.wheels_for(charm_dir)
        except W.WheelCacheError as e:
            raise LocalJujuError(str(e))

    @staticmethod
    def _charm_files(charm_dir):
        """Every file and symlink of a charm directory, relative to it."""
        found = []
        for root, dirs, files in os.walk(charm_dir):
            for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
                found.append(os.path.relpath(os.path.join(root, name), charm_dir))
        return sorted(found)

    def _sync_charm(self, src, dst):
        """Deploy a charm into a unit's charm dir, as Juju's charm deployer does on an
        upgrade: files of the previous charm that the new one lacks are removed (old
        wheelhouse sdists among them), files created at run time (.unit-state.db, the
        wheelhouse markers) are kept."""
        os.makedirs(dst, exist_ok=True)
        record = dst + '.files.json'
        new_files = self._charm_files(src)
        for rel in sorted(set(S.read_json(record) if os.path.exists(record) else []) -
                          set(new_files), reverse=True):
            target = os.path.join(dst, rel)
            if os.path.lexists(target) and not os.path.isdir(target) or \
                    os.path.islink(target):
                os.unlink(target)
        for rel in new_files:
            s, t = os.path.join(src, rel), os.path.join(dst, rel)
            os.makedirs(os.path.dirname(t), exist_ok=True)
            if os.path.lexists(t) and (os.path.islink(t) or not os.path.isdir(t)):
                os.unlink(t)
            if os.path.islink(s):
                os.symlink(os.readlink(s), t)
            else:
                shutil.copy2(s, t)
        S.write_json(record, new_files)

    # ---- options / config -----------------------------------------------------------------

    @staticmethod
    def _coerce(app, key, value):
        opts = app['options']
        if key not in opts:
            raise LocalJujuError('unknown option "%s"' % key)
        typ = opts[key].get('type', 'string')
        if value is None:
            return None
        try:
            if typ == 'string':
                return value if isinstance(value, str) else str(value)
            if typ == 'int':
                if isinstance(value, bool):
                    raise ValueError
                return int(value)
            if typ == 'float':
                return float(value)
            if typ == 'boolean':
                if isinstance(value, bool):
                    return value
                if str(value).lower() in ('true', 'yes', 'on', '1'):
                    return True
                if str(value).lower() in ('false', 'no', 'off', '0'):
                    return False
                raise ValueError
        except (TypeError, ValueError):
            raise LocalJujuError('option "%s" expected %s, got %r' % (key, typ, value))
        return value

    # ---- deploy / units ----------------------------------------------------------------------

    def deploy(self, path, app='docker-registry', n=1, config=None, resources=None,
               preload_image=None, publish_ports=False):
        """publish_ports: the application's machines serve `docker run -p` of the registry's
        ports on their own address (the machine trait in localjuju/docker_publish.py)."""
        self._ensure()
        st = self.load()
        if app in st['apps'] or app in st['remotes']:
            raise LocalJujuError('application "%s" already exists' % app)
        if n < 1:
            raise LocalJujuError('-n must be at least 1')
        adir = self.store.sub('apps', app)
        os.makedirs(adir, exist_ok=True)
        charm_dir = os.path.join(adir, 'charm')
        self._copy_charm(path, charm_dir)
        meta = self._charm_meta(charm_dir)
        wheels = self._wheels_for(charm_dir)
        rec = dict(meta, charm_source=os.path.abspath(path), charm_dir=charm_dir, config={},
                   wheels=wheels,
                   resources={}, units=[], next_unit=0, leader=None, leader_settings={},
                   version='', app_status=None,
                   preload_image=os.path.abspath(preload_image) if preload_image else None,
                   publish_ports=bool(publish_ports))
        for k, v in (config or {}).items():
            rec['config'][k] = self._coerce(rec, k, v)
        for name, p in (resources or {}).items():
            rec['resources'][name] = self._store_resource(app, rec, name, p)
        with self.store.transaction() as st:
            st['apps'][app] = rec
            for ep, spec in rec['endpoints'].items():
                if spec['role'] == 'peers':
                    self._add_peer_relation(st, app, ep)
        self._say('Deployed "%s" from %s' % (app, path))
        self._add_units(app, n)
        return self.status()

    @staticmethod
    def _add_peer_relation(st, app, ep):
        num = str(st['next_relation'])
        st['next_relation'] += 1
        st['relations'][num] = {
            'id': int(num), 'endpoints': {app: ep},
            'interface': st['apps'][app]['endpoints'][ep]['interface'], 'peer': True,
            'units': {}, 'apps': {app: {}}, 'members': [], 'seen': {}, 'broken': False}
        return num

    def _store_resource(self, app, rec, name, path):
        if name not in rec['resource_meta']:
            raise LocalJujuError('charm has no resource "%s"' % name)
        fname = rec['resource_meta'][name].get('filename') or os.path.basename(path)
        d = self.store.sub('resources', app, name)
        os.makedirs(d, exist_ok=True)
        dst = os.path.join(d, fname)
        shutil.copyfile(path, dst + '.tmp')
        os.rename(dst + '.tmp', dst)
        return dst

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
            self._sync_charm(charm_src, st['units'][unit]['charm_dir'])
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

    def _enter_relations(self, unit):
        """A started unit enters every existing relation of its application."""
        st = self.load()
        app = S.app_of(unit)
        for num, rel in sorted(st['relations'].items(), key=lambda kv: int(kv[0])):
            if app in rel['endpoints'] and not rel.get('broken'):
                self._join(num, [unit])

    def _prefill(self, st, unit):
        addr = st['units'][unit]['address'] if unit in st['units'] else \
            self._remote_addr(st, unit)
        return {'private-address': addr, 'ingress-address': addr,
                'egress-subnets': '%s/32' % addr}

    @staticmethod
    def _remote_addr(st, unit):
        return st['remotes'][S.app_of(unit)]['addresses'][unit]

    def _join(self, num, units):
        """units enter relation num: relation-created, then joined/changed both ways."""
        with self.store.transaction() as st:
            rel = st['relations'][num]
            before = list(rel['members'])
            for u in units:
                if u not in rel['members']:
                    rel['members'].append(u)
                    rel['units'][u] = self._prefill(st, u)
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

    # ---- event queue ---------------------------------------------------------------------

    def _enqueue(self, unit, hook, rel=None, remote=None, remote_app=None, departing=None):
        ev = {'unit': unit, 'hook': hook, 'rel': rel, 'remote': remote,
              'remote_app': remote_app or (S.app_of(remote) if remote else None),
              'departing': departing}
        if hook.endswith('-relation-changed') or hook == 'leader-settings-changed' or \
                hook == 'config-changed':
            if ev in self.queue:
                return
        self.queue.append(ev)

    def _drain(self):
        count = 0
        self._react_remotes()
        while self.queue:
            ev = self.queue.popleft()
            count += 1
            if count > MAX_EVENTS:
                self.queue.clear()
                raise LocalJujuError('hook loop did not settle after %d hooks' % MAX_EVENTS)
            if 'internal' in ev:
                ev['internal']()
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

    # ---- running hooks -------------------------------------------------------------------

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
            hook_path = os.path.join(st['units'][unit]['charm_dir'], 'hooks', hook)
            self.store.log(unit, 'running %s%s' % (hook, ' (remote %s)' % ev['remote']
                                                   if ev.get('remote') else ''))
            self._say('%s: running %s hook%s' % (unit, hook, ' for %s' % ev['remote']
                                                  if ev.get('remote') else ''))
            ctx_path = self._context(st, unit, ev)
            try:
                if os.path.exists(hook_path):
                    env = self._env(st, unit, ctx_path, hook=hook, ev=ev)
                    rc, output = self._exec(st, unit, [hook_path], env,
                                            self.store.sub('logs', unit.replace('/', '-') +
                                                           '.log'))
                else:
                    rc, output = 0, ''
                ctx = S.read_json(ctx_path)
            finally:
                for p in (ctx_path, ctx_path + '.lock'):
                    if os.path.exists(p):
                        os.unlink(p)
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
                ls = app.setdefault('leader_settings', {})
                before = dict(ls)
                for k, v in p['leader'].items():
                    if v is None:
                        ls.pop(k, None)
                    else:
                        ls[k] = v
                if ls != before:
                    for other in app['units']:
                        if other != unit and st['units'].get(other, {}).get('life') == 'alive':
                            followups.append({'unit': other, 'hook': 'leader-settings-changed'})
            for section, key in (('rel_units', 'units'), ('rel_apps', 'apps')):
                for num, changes in p.get(section, {}).items():
                    rel = st['relations'].get(num)
                    if rel is None:
                        continue
                    owner = unit if key == 'units' else S.app_of(unit)
                    bag = rel[key].setdefault(owner, {})
                    before = dict(bag)
                    for k, v in changes.items():
                        if v is None:
                            bag.pop(k, None)
                        else:
                            bag[k] = v
                    if bag == before or rel.get('broken'):
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

    # ---- verbs -------------------------------------------------------------------------------

    def config(self, app, values=None, reset=None):
        st = self.load()
        if app not in st['apps']:
            raise LocalJujuError('application "%s" not found' % app)
        a = st['apps'][app]
        if values or reset:
            new = {}
            for k, v in (values or {}).items():
                new[k] = self._coerce(a, k, v)
            for k in reset or []:
                if k not in a['options']:
                    raise LocalJujuError('unknown option "%s"' % k)
            with self.store.transaction() as st:
                cfg = st['apps'][app]['config']
                before = dict(cfg)
                cfg.update(new)
                for k in reset or []:
                    cfg.pop(k, None)
                changed = cfg != before
                units = list(st['apps'][app]['units'])
            if changed:
                for u in units:
                    self._enqueue(u, 'config-changed')
                self._drain()
            st = self.load()
            a = st['apps'][app]
        out = {k: opt.get('default') for k, opt in a['options'].items()}
        out.update(a['config'])
        return out

    def _resolve_endpoint(self, st, spec, peer_interface=None):
        name, _, ep = spec.partition(':')
        return name, ep or None

    def integrate(self, a, b):
        self._ensure()
        st = self.load()
        (an, aep), (bn, bep) = self._resolve_endpoint(st, a), self._resolve_endpoint(st, b)
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
                rel['units'][ru] = self._prefill(st, ru)
                rel['seen'][ru] = []
        self._join(num, ours)
        self._drain()
        return self.status()

    def _find_relation(self, st, a, b):
        (an, aep), (bn, bep) = self._resolve_endpoint(st, a), self._resolve_endpoint(st, b)
        for num, rel in st['relations'].items():
            eps = rel['endpoints']
            if rel.get('peer') or an not in eps or bn not in eps:
                continue
            if (aep and eps[an] != aep) or (bep and eps[bn] != bep):
                continue
            return num
        raise LocalJujuError('relation between %s and %s not found' % (a, b))

    def remove_relation(self, a, b):
        st = self.load()
        num = self._find_relation(st, a, b)
        self._break_relation(num)
        return self.status()

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
        self.queue.append({'internal': mark})
        for u in ours:
            ep = rel['endpoints'][S.app_of(u)]
            for v in list(rel['seen'].get(u, [])):
                self._enqueue(u, '%s-relation-departed' % ep, rel=num, remote=v, departing=v)
            self._enqueue(u, '%s-relation-broken' % ep, rel=num)
        self.queue.append({'internal': finish})
        self._drain()

    def remove_unit(self, unit):
        st = self.load()
        if unit not in st['units']:
            raise LocalJujuError('unit "%s" not found' % unit)
        app = S.app_of(unit)
        with self.store.transaction() as st:
            st['units'][unit]['life'] = 'dying'
        # leave every relation: our unit sees everyone depart; others see us depart
        st = self.load()
        for num, rel in sorted(st['relations'].items(), key=lambda kv: int(kv[0])):
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
            self.queue.append({'internal': leave})
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
        for unit in sorted(st['units'], key=_ukey):
            self._enqueue(unit, 'update-status')
        self._drain()
        return self.status()

    def refresh(self, app, path=None, switch=None):
        """Upgrade app to the built charm at path (default: where it came from), or with
        switch=PATH to another charm. Like Juju, it refuses to break an established
        non-peer relation (endpoint gone, or its interface or role changed) and replaces a
        peer relation whose interface changed."""
        st = self.load()
        if app not in st['apps']:
            raise LocalJujuError('application "%s" not found' % app)
        a = st['apps'][app]
        src = os.path.abspath(switch or path or a['charm_source'])
        staged = self.store.sub('apps', app, 'charm-next')
        self._copy_charm(src, staged)
        meta = self._charm_meta(staged)
        try:
            if not switch and meta['charm_name'] != a['charm_name']:
                raise LocalJujuError('cannot refresh "%s" to charm "%s": not the same charm '
                                     '(use --switch)' % (app, meta['charm_name']))
            replaced_peers = self._check_endpoints(st, app, a['endpoints'], meta['endpoints'])
        except LocalJujuError:
            shutil.rmtree(staged)  # the deployed charm stays as it was
            raise
        charm_dir = a['charm_dir']
        shutil.rmtree(charm_dir)
        os.rename(staged, charm_dir)
        wheels = self._wheels_for(charm_dir)
        with self.store.transaction() as st:
            a = st['apps'][app]
            a.update(meta, charm_source=src, wheels=wheels)
            a['config'] = {k: v for k, v in a['config'].items() if k in meta['options']}
            for num in replaced_peers:
                del st['relations'][num]
            new_peers = [self._add_peer_relation(st, app, ep)
                         for ep, spec in meta['endpoints'].items()
                         if spec['role'] == 'peers' and not any(
                             r.get('peer') and r['endpoints'].get(app) == ep
                             for r in st['relations'].values())]
            units = list(a['units'])
            for u in units:
                self._sync_charm(charm_dir, st['units'][u]['charm_dir'])
        self._say('Refreshed "%s" to %s' % (app, src))
        for u in units:
            self._enqueue(u, 'upgrade-charm')
            self._enqueue(u, 'config-changed')
        self._drain()
        for num in new_peers:
            self._join(num, units)
        self._drain()
        return self.status()

    @staticmethod
    def _check_endpoints(st, app, old_eps, new_eps):
        """Relation numbers of peer relations the new charm replaces; LocalJujuError when a
        non-peer relation in use would break."""
        replaced = []
        for num, rel in sorted(st['relations'].items(), key=lambda kv: int(kv[0])):
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

    def remote_run(self, name, verb, *args):
        with self.store.transaction() as st:
            if name not in st['remotes']:
                raise LocalJujuError('remote application "%s" not found' % name)
            r = R.make(name, st['remotes'][name], self.dir)
            out = r.run(st, verb, list(args))
        self._drain()
        return out

    # ---- actions -------------------------------------------------------------------------

    @staticmethod
    def _check_type(v, spec):
        t = spec.get('type')
        if t is None:
            return True
        types = t if isinstance(t, list) else [t]
        for ty in types:
            if ty == 'string' and isinstance(v, str):
                return True
            if ty == 'boolean' and isinstance(v, bool):
                return True
            if ty == 'integer' and isinstance(v, int) and not isinstance(v, bool):
                return True
            if ty == 'number' and isinstance(v, (int, float)) and not isinstance(v, bool):
                return True
            if ty == 'array' and isinstance(v, list):
                return True
            if ty == 'object' and isinstance(v, dict):
                return True
            if ty == 'null' and v is None:
                return True
        return False

    def _validate_params(self, actions, name, params):
        spec = actions.get(name)
        if spec is None:
            raise LocalJujuError('action "%s" not defined on unit' % name)
        spec = spec or {}
        props = spec.get('params') or spec.get('properties') or {}
        additional = spec.get('additionalProperties', False)
        out = {}
        for k, v in params.items():
            if k not in props:
                if not additional:
                    raise LocalJujuError(
                        'validation failed: (root) : additional property "%s" is not allowed, '
                        'given {%s}' % (k, ', '.join('%s:%s' % kv for kv in params.items())))
                out[k] = v
                continue
            pspec = props[k] or {}
            if not self._check_type(v, pspec):
                raise LocalJujuError('validation failed: (root).%s : must be of type %s, '
                                     'given %r' % (k, pspec.get('type'), v))
            if 'enum' in pspec and v not in pspec['enum']:
                raise LocalJujuError('validation failed: (root).%s : must be one of %s, '
                                     'given %r' % (k, pspec['enum'], v))
            out[k] = v
        for k in spec.get('required') or []:
            if k not in out:
                raise LocalJujuError('validation failed: (root) : "%s" property is missing '
                                     'and required, given {}' % k)
        for k, pspec in props.items():
            if k not in out and isinstance(pspec, dict) and 'default' in pspec:
                out[k] = copy.deepcopy(pspec['default'])
        return out

    @staticmethod
    def parse_params(items):
        """['a=1', 'b.c=true'] -> {'a': 1, 'b': {'c': True}} (values parsed as YAML)."""
        out = {}
        for it in items:
            k, eq, v = it.partition('=')
            if not eq:
                raise LocalJujuError('argument "%s" must be of the form key=value' % it)
            cur = out
            parts = k.split('.')
            for p in parts[:-1]:
                cur = cur.setdefault(p, {})
            cur[parts[-1]] = parse_value(v)
        return out

    def run(self, unit, action, params=None):
        st = self.load()
        if unit not in st['units']:
            raise LocalJujuError('unit "%s" not found' % unit)
        app = st['apps'][S.app_of(unit)]
        params = self._validate_params(app.get('actions') or {}, action, params or {})
        with self.store.transaction() as st:
            aid = str(st['next_action'])
            st['next_action'] += 1
            rec = {'id': aid, 'uuid': str(uuid.uuid4()), 'name': action, 'unit': unit,
                   'params': params, 'status': 'pending', 'message': '', 'results': {},
                   'log': [], 'enqueued': time.time()}
            st['actions'][aid] = rec
        with self.store.unit_lock(unit):
            st = self.load()
            u = st['units'][unit]
            path = os.path.join(u['charm_dir'], 'actions', action)
            with self.store.transaction() as st2:
                st2['actions'][aid]['status'] = 'running'
                st2['actions'][aid]['started'] = time.time()
            ctx_path = self._context(st, unit, action_id=aid)
            try:
                self._say('%s: running action %s' % (unit, action))
                self.store.log(unit, 'running action %s (id %s)' % (action, aid))
                if os.path.exists(path):
                    env = self._env(st, unit, ctx_path, action=rec)
                    rc, output = self._exec(st, unit, [path], env, self.store.sub(
                        'logs', unit.replace('/', '-') + '.log'))
                else:
                    rc, output = 127, 'action %s has no executable actions/%s' % (action, action)
                ctx = S.read_json(ctx_path)
            finally:
                for p in (ctx_path, ctx_path + '.lock'):
                    if os.path.exists(p):
                        os.unlink(p)
            followups = self._commit(unit, 'action:' + action, ctx, rc, action=True)
            ad = ctx['action_data']
            if ad['failed'] is not None:
                status, message = 'failed', ad['failed']
            elif rc != 0:
                status, message = 'failed', 'exit status %d' % rc
            else:
                status, message = 'completed', ''
            results = dict(ad['results'])
            with self.store.transaction() as st:
                r = st['actions'][aid]
                r.update(status=status, message=message, results=results, log=ad['log'],
                         completed=time.time(), output=output[-20000:], **{'return-code': rc})
                rec = r
        for f in followups:
            self._enqueue(**f)
        self._drain()
        return {'id': aid, 'unit': unit, 'action': action, 'status': status,
                'message': message, 'results': results, 'log': [x['message'] for x in ad['log']],
                'return-code': rc, 'output': output}

    def action(self, aid):
        return self.load()['actions'][str(aid)]

    # ---- status --------------------------------------------------------------------------

    def status(self):
        if not self.store.exists():
            return {'model': self.name, 'applications': {}, 'relations': [], 'machines': {}}
        st = self.load()
        apps = {}
        for name, a in sorted(st['apps'].items()):
            units = {}
            for un in sorted(a['units'], key=_ukey):
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
        for num, rel in sorted(st['relations'].items(), key=lambda kv: int(kv[0])):
            rels.append({
                'id': rel['id'],
                'endpoints': ['%s:%s' % kv for kv in sorted(rel['endpoints'].items())],
                'interface': rel['interface'], 'peer': bool(rel.get('peer')),
                'units': {u: dict(b) for u, b in sorted(rel['units'].items())},
                'applications': {a: dict(b) for a, b in sorted(rel['apps'].items())},
            })
        machines = {}
        for n, m in sorted(st['machines'].items(), key=lambda kv: int(kv[0])):
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
        p = self.store.sub('logs', unit.replace('/', '-') + '.log')
        try:
            with open(p) as f:
                return f.read()
        except FileNotFoundError:
            return ''

    # ---- destroy -------------------------------------------------------------------------

    def destroy(self):
        if not self.store.exists():
            return {'destroyed': self.name}
        st = self.load()
        for unit in sorted(st['units'], key=_ukey):
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
