"""Applications: deploying a built charm, its config and resources, and refreshing it to
another build (upgrade-charm) or another charm (--switch)."""
import os
import shutil

from . import charms as C
from . import relations as REL
from . import wheels as W
from .errors import LocalJujuError


class Applications:
    """The model's application verbs (part of Model)."""

    def deploy(self, path, app='docker-registry', n=1, config=None, resources=None,
               preload_image=None, publish_ports=False):
        """publish_ports: the application's machines serve `docker run -p` of the registry's
        ports on their own address (the machine trait in docker_publish.py)."""
        self._ensure()
        st = self.load()
        if app in st['apps'] or app in st['remotes']:
            raise LocalJujuError('application "%s" already exists' % app)
        if n < 1:
            raise LocalJujuError('-n must be at least 1')
        adir = self.store.sub('apps', app)
        os.makedirs(adir, exist_ok=True)
        charm_dir = os.path.join(adir, 'charm')
        C.copy_charm(path, charm_dir)
        meta = C.charm_meta(charm_dir)
        wheels = self._wheels_for(charm_dir)
        rec = dict(meta, charm_source=os.path.abspath(path), charm_dir=charm_dir, config={},
                   wheels=wheels,
                   resources={}, units=[], next_unit=0, leader=None, leader_settings={},
                   version='', app_status=None,
                   preload_image=os.path.abspath(preload_image) if preload_image else None,
                   publish_ports=bool(publish_ports))
        for k, v in (config or {}).items():
            rec['config'][k] = C.coerce_option(rec, k, v)
        for name, p in (resources or {}).items():
            rec['resources'][name] = self._store_resource(app, rec, name, p)
        with self.store.transaction() as st:
            st['apps'][app] = rec
            for ep, spec in rec['endpoints'].items():
                if spec['role'] == 'peers':
                    REL.add_peer_relation(st, app, ep)
        self._say('Deployed "%s" from %s' % (app, path))
        self._add_units(app, n)
        return self.status()

    def _wheels_for(self, charm_dir):
        if not self.machines:
            return None  # no unit bootstraps a venv on the host
        try:
            return W.wheels_for(charm_dir)
        except W.WheelCacheError as e:
            raise LocalJujuError(str(e))

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

    def config(self, app, values=None, reset=None):
        st = self.load()
        if app not in st['apps']:
            raise LocalJujuError('application "%s" not found' % app)
        a = st['apps'][app]
        if values or reset:
            new = {}
            for k, v in (values or {}).items():
                new[k] = C.coerce_option(a, k, v)
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
        C.copy_charm(src, staged)
        meta = C.charm_meta(staged)
        try:
            if not switch and meta['charm_name'] != a['charm_name']:
                raise LocalJujuError('cannot refresh "%s" to charm "%s": not the same charm '
                                     '(use --switch)' % (app, meta['charm_name']))
            replaced_peers = REL.replaced_peer_relations(st, app, a['endpoints'],
                                                         meta['endpoints'])
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
            new_peers = [REL.add_peer_relation(st, app, ep)
                         for ep, spec in meta['endpoints'].items()
                         if spec['role'] == 'peers' and not any(
                             r.get('peer') and r['endpoints'].get(app) == ep
                             for r in st['relations'].values())]
            units = list(a['units'])
            for u in units:
                C.sync_charm(charm_dir, st['units'][u]['charm_dir'])
        self._say('Refreshed "%s" to %s' % (app, src))
        for u in units:
            self._enqueue(u, 'upgrade-charm')
            self._enqueue(u, 'config-changed')
        self._drain()
        for num in new_peers:
            self._join(num, units)
        self._drain()
        return self.status()
