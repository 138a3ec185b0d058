#!/bin/sh
''''exec python3 -S "$0" "$@" # '''
# (sh runs the line above; python sees a string. -S skips site for a fast start: the hook
# runs this once per hook-tool call, hundreds of times per reactive hook; site-packages
# are added back lazily when PyYAML is needed.)
"""One dispatcher for every Juju hook tool.

The runner puts a tools directory first on a hook's PATH; it holds symlinks named after each
hook tool (relation-get, config-get, ...) pointing at this file.  The tool name is taken from
argv[0].  The invocation context (unit, relation, remote unit, action, model directory) is read
from the JSON file named by $LOCALJUJU_CONTEXT.  Writes (relation-set, status-set, open-port,
leader-set, application-version-set) are recorded as pending in the context file and only
committed to the model state by the runner when the hook exits 0.
"""
import contextlib
import json
import os
import re
import sys
import time

if __name__ == '__main__':
    # Run as a hook tool, through a symlink named after it: the package is this real
    # file's folder, and its parent the import path.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
from localjuju import state as S

# Every hook tool the runner provides; juju-log is juju-log.sh, the rest this file.
TOOLS = [
    'config-get', 'relation-ids', 'relation-list', 'relation-get', 'relation-set', 'unit-get',
    'network-get', 'is-leader', 'leader-get', 'leader-set', 'status-set', 'status-get',
    'juju-log', 'application-version-set', 'open-port', 'close-port', 'opened-ports',
    'action-get', 'action-set', 'action-fail', 'action-log', 'resource-get', 'storage-list',
    'storage-get', 'goal-state', 'juju-reboot', 'relation-model-get',
]

WORKLOAD_STATES = ('maintenance', 'blocked', 'waiting', 'active')


class ToolError(Exception):
    def __init__(self, msg, code=1):
        super().__init__(msg)
        self.code = code


def _yaml():
    try:
        import yaml
    except ImportError:
        import site
        site.main()
        import yaml
    return yaml


# ---- output formatting ----------------------------------------------------------------------

def fmt_out(value, fmt):
    if fmt == 'json':
        return json.dumps(value)
    if fmt == 'yaml':
        if value is None:
            return ''
        out = _yaml().safe_dump(value, default_flow_style=False)
        if out.endswith('\n...\n'):
            out = out[:-4]
        return out.rstrip('\n')
    # juju's "smart" format
    if value is None:
        return ''
    if isinstance(value, bool):
        return 'True' if value else 'False'
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return '\n'.join(str(v) for v in value)
    return _yaml().safe_dump(value, default_flow_style=False).rstrip('\n')


def emit(value, fmt):
    out = fmt_out(value, fmt)
    if out != '':
        sys.stdout.write(out + '\n')


class Args:
    """A tiny getopt-like parser (juju's gnuflag accepts --flag=v, --flag v, -r v)."""

    def __init__(self, argv, flags, bools=()):
        self.opts = {}
        self.pos = []
        i = 0
        while i < len(argv):
            a = argv[i]
            if a == '--':
                self.pos.extend(argv[i + 1:])
                break
            if a.startswith('-') and a != '-' and len(a) > 1:
                name, eq, val = a.partition('=')
                if name in bools:
                    self.opts[name] = True
                elif name in flags:
                    if not eq:
                        i += 1
                        if i >= len(argv):
                            raise ToolError('flag needs an argument: %s' % name, 2)
                        val = argv[i]
                    self.opts[name] = val
                else:
                    raise ToolError('flag provided but not defined: %s' % name, 2)
            else:
                self.pos.append(a)
            i += 1

    def get(self, *names, default=None):
        for n in names:
            if n in self.opts:
                return self.opts[n]
        return default


def get_format(a, default='smart'):
    f = a.get('--format', default=default)
    if f not in ('json', 'yaml', 'smart'):
        raise ToolError('invalid value "%s" for flag --format' % f, 2)
    return f


# ---- context --------------------------------------------------------------------------------

class Ctx:
    def __init__(self):
        path = os.environ.get('LOCALJUJU_CONTEXT')
        if not path:
            raise ToolError('LOCALJUJU_CONTEXT is not set: not running inside a localjuju hook')
        self.path = path
        self.data = S.read_json(path)
        if self.data is None:
            raise ToolError('context file %s is gone (hook already finished?)' % path)
        self.store = S.Store(self.data['model_dir'])
        self._st = None
        self.unit = self.data['unit']
        self.app = S.app_of(self.unit)

    @property
    def st(self):
        if self._st is None:
            try:
                self._st = self.store.load()
            except FileNotFoundError as e:
                raise ToolError(str(e))
        return self._st

    @contextlib.contextmanager
    def update(self):
        with S.flock(self.path + '.lock'):
            self.data = S.read_json(self.path)
            yield self.data
            S.write_json(self.path, self.data)

    @property
    def pending(self):
        return self.data['pending']

    def me(self):
        return self.st['units'][self.unit]

    def relation(self, rid):
        if rid is None:
            rid = self.data.get('relation')
            if rid is None:
                raise ToolError('no relation id specified', 2)
        num = S.rel_num(rid)
        rel = self.st['relations'].get(num)
        if rel is None or self.app not in rel['endpoints']:
            raise ToolError('invalid value "%s" for option -r: relation not found' % rid, 2)
        return num, rel

    def unit_bag(self, num, rel, unit):
        bag = rel['units'].get(unit, {})
        if unit == self.unit:
            return S.merged(bag, self.pending['rel_units'].get(num, {}))
        return dict(bag)

    def app_bag(self, num, rel, app):
        bag = rel['apps'].get(app, {})
        if app == self.app:
            return S.merged(bag, self.pending['rel_apps'].get(num, {}))
        return dict(bag)

    def visible_units(self, rel):
        """Units of the other side of rel (other peers for a peer relation) in scope."""
        departing = self.data.get('departing_unit')
        seen = rel.get('seen', {}).get(self.unit, [])
        return sorted((u for u in seen if u != self.unit and u != departing),
                      key=S.unit_sort_key)

    def address(self):
        return self.me()['address']

    def config(self):
        app = self.st['apps'][self.app]
        cfg = {}
        for k, opt in app.get('options', {}).items():
            cfg[k] = opt.get('default')
        cfg.update(app.get('config', {}))
        return cfg

    def is_leader(self):
        return self.st['apps'][self.app].get('leader') == self.unit

    def leader_settings(self):
        return S.merged(self.st['apps'][self.app].get('leader_settings', {}),
                        self.pending['leader'])

    def ports(self):
        p = self.pending.get('ports')
        return list(p) if p is not None else list(self.me().get('ports', []))

    def action(self):
        aid = self.data.get('action')
        if not aid:
            raise ToolError('not running an action')
        return self.st['actions'][aid]


# ---- the tools ------------------------------------------------------------------------------

def t_config_get(ctx, argv):
    a = Args(argv, ['--format', '-o', '--output'], ['--all', '-a'])
    fmt = get_format(a)
    cfg = ctx.config()
    if a.pos:
        emit(cfg.get(a.pos[0]), fmt)
    elif a.get('--all', '-a'):
        emit(cfg, fmt)
    else:
        emit({k: v for k, v in cfg.items() if v is not None}, fmt)


def t_relation_ids(ctx, argv):
    a = Args(argv, ['--format', '-o', '--output'])
    fmt = get_format(a)
    ep = a.pos[0] if a.pos else ctx.data.get('relation_name')
    if not ep:
        raise ToolError('no endpoint name specified', 2)
    ids = []
    for num, rel in S.by_number(ctx.st['relations']):
        if rel['endpoints'].get(ctx.app) == ep:
            ids.append('%s:%s' % (ep, num))
    emit(ids, fmt)


def t_relation_list(ctx, argv):
    a = Args(argv, ['--format', '-o', '--output', '-r', '--relation'], ['--app'])
    fmt = get_format(a)
    num, rel = ctx.relation(a.get('-r', '--relation'))
    if a.get('--app'):
        others = [x for x in rel['endpoints'] if x != ctx.app] or [ctx.app]
        emit(others[0], fmt)
        return
    emit(ctx.visible_units(rel), fmt)


def t_relation_get(ctx, argv):
    a = Args(argv, ['--format', '-o', '--output', '-r', '--relation'], ['--app'])
    fmt = get_format(a)
    num, rel = ctx.relation(a.get('-r', '--relation'))
    pos = list(a.pos)
    key = pos.pop(0) if pos else '-'
    target = pos.pop(0) if pos else None
    if pos:
        raise ToolError('unrecognized args: %s' % pos, 2)
    if a.get('--app'):
        app = target
        if app is None:
            app = S.app_of(ctx.data['remote_unit']) if ctx.data.get('remote_unit') else \
                ctx.data.get('remote_app')
        if app is None:
            raise ToolError('no unit or application specified', 2)
        if '/' in app:
            app = S.app_of(app)
        if app not in rel['endpoints'] and app not in rel['apps']:
            raise ToolError('application "%s" not found in relation' % app, 2)
        bag = ctx.app_bag(num, rel, app)
    else:
        unit = target or ctx.data.get('remote_unit')
        if not unit:
            raise ToolError('no unit id specified', 2)
        if '/' not in unit:
            raise ToolError('invalid unit name "%s"' % unit, 2)
        if unit != ctx.unit and unit not in rel['units']:
            raise ToolError('cannot read settings for unit "%s" in relation "%s": '
                            'unit "%s": settings not found' % (unit, num, unit), 2)
        bag = ctx.unit_bag(num, rel, unit)
    if key == '-':
        emit(bag, fmt)
    else:
        emit(bag.get(key), fmt)


RELATION_SET_HELP = """Usage: relation-set [options] key=value [key=value ...]

Summary:
set relation settings

Options:
--app  (= false)
    pick whether you are setting "application" settings or "unit" settings
--file  (= )
    file containing key-value pairs
--format (= "")
    deprecated format flag
-r, --relation  (= %s)
    specify a relation by id

Details:
"relation-set" writes the local unit's settings for some relation. If no
relation is specified then the current relation is used. The setting values
are not inspected and are stored as strings. Setting an empty string causes
the setting to be removed. Duplicate settings are not allowed.

If --file is provided, it is used as the source of key-value pairs.
The file must contain a YAML map of keys to values; --file - reads stdin.
A null value removes the key.
"""


def _parse_kv(items, tool):
    out = {}
    for it in items:
        k, eq, v = it.partition('=')
        if not eq or not k:
            raise ToolError('expected "key=value", got "%s"' % it, 2)
        if k in out:
            raise ToolError('duplicate key specified: "%s"' % k, 2)
        out[k] = v
    return out


def t_relation_set(ctx, argv):
    if '--help' in argv or '-h' in argv:
        sys.stdout.write(RELATION_SET_HELP % (ctx.data.get('relation_id') or ''))
        return
    a = Args(argv, ['--format', '-r', '--relation', '--file'], ['--app'])
    num, rel = ctx.relation(a.get('-r', '--relation'))
    settings = {}
    f = a.get('--file')
    if f is not None:
        text = sys.stdin.read() if f == '-' else open(f).read()
        data = _yaml().safe_load(text) if text.strip() else {}
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ToolError('expected YAML map in --file, got %s' % type(data).__name__)
        for k, v in data.items():
            settings[str(k)] = None if v is None else (v if isinstance(v, str) else
                                                        _scalar_str(v))
    for k, v in _parse_kv(a.pos, 'relation-set').items():
        settings[k] = v
    for k, v in list(settings.items()):
        if v == '':
            settings[k] = None
    section = 'rel_apps' if a.get('--app') else 'rel_units'
    if a.get('--app') and not ctx.is_leader():
        raise ToolError('cannot write relation settings: this unit is not the leader')
    with ctx.update() as d:
        d['pending'][section].setdefault(num, {}).update(settings)


def _scalar_str(v):
    if isinstance(v, bool):
        return 'true' if v else 'false'
    if isinstance(v, (int, float)):
        return str(v)
    return _yaml().safe_dump(v, default_flow_style=True).strip()


def t_unit_get(ctx, argv):
    a = Args(argv, ['--format', '-o', '--output'])
    fmt = get_format(a)
    if len(a.pos) != 1 or a.pos[0] not in ('private-address', 'public-address'):
        raise ToolError('unknown setting "%s"' % ' '.join(a.pos), 2)
    emit(ctx.address(), fmt)


def _bindings(ctx):
    app = ctx.st['apps'][ctx.app]
    return set(app.get('endpoints', {})) | set(app.get('extra_bindings', []))


def t_network_get(ctx, argv):
    a = Args(argv, ['--format', '-o', '--output', '-r', '--relation'],
             ['--primary-address', '--bind-address', '--ingress-address', '--egress-subnets'])
    fmt = get_format(a, default='smart')
    if not a.pos:
        raise ToolError('no arguments specified', 2)
    binding = a.pos[0]
    if a.get('-r', '--relation'):
        ctx.relation(a.get('-r', '--relation'))
    if binding not in _bindings(ctx):
        raise ToolError('no network config found for binding "%s"' % binding)
    addr = ctx.address()
    single = [f for f in ('--primary-address', '--bind-address', '--ingress-address',
                          '--egress-subnets') if a.get(f)]
    if single:
        vals = []
        for f in single:
            if f == '--egress-subnets':
                vals.append(['%s/32' % addr] if len(single) == 1 else '%s/32' % addr)
            else:
                vals.append(addr)
        if len(single) == 1:
            emit(vals[0], fmt)
        else:
            emit({f.lstrip('-'): v for f, v in zip(single, vals)}, fmt)
        return
    info = {
        'bind-addresses': [{
            'mac-address': '', 'interface-name': 'lo',
            'addresses': [{'hostname': '', 'address': addr, 'value': addr,
                           'cidr': '127.0.0.0/8'}],
            'macaddress': '', 'interfacename': 'lo',
        }],
        'egress-subnets': ['%s/32' % addr],
        'ingress-addresses': [addr],
    }
    emit(info, 'yaml' if fmt == 'smart' else fmt)


def t_is_leader(ctx, argv):
    a = Args(argv, ['--format', '-o', '--output'])
    emit(ctx.is_leader(), get_format(a))


def t_leader_get(ctx, argv):
    a = Args(argv, ['--format', '-o', '--output'])
    fmt = get_format(a)
    s = ctx.leader_settings()
    key = a.pos[0] if a.pos else '-'
    emit(s if key == '-' else s.get(key), fmt)


def t_leader_set(ctx, argv):
    a = Args(argv, ['--file'])
    if not ctx.is_leader():
        raise ToolError('cannot write leadership settings: cannot write settings: not the leader')
    settings = _parse_kv(a.pos, 'leader-set')
    with ctx.update() as d:
        for k, v in settings.items():
            d['pending']['leader'][k] = v if v != '' else None


def t_status_set(ctx, argv):
    a = Args(argv, [], ['--application'])
    if not a.pos:
        raise ToolError('invalid args, require <status> [message] [data]', 2)
    st = a.pos[0]
    if st not in WORKLOAD_STATES:
        raise ToolError('invalid status "%s", expected one of [%s]' %
                        (st, ' '.join(WORKLOAD_STATES)), 2)
    msg = a.pos[1] if len(a.pos) > 1 else ''
    if a.get('--application') and not ctx.is_leader():
        raise ToolError('this unit is not the leader')
    with ctx.update() as d:
        key = 'app_status' if a.get('--application') else 'status'
        d['pending'][key] = {'status': st, 'message': msg}
        d['pending'].setdefault('status_calls', []).append(
            {'application': bool(a.get('--application')), 'status': st, 'message': msg})


def t_status_get(ctx, argv):
    a = Args(argv, ['--format', '-o', '--output'], ['--include-data', '--application'])
    fmt = get_format(a)
    if a.get('--application'):
        app = ctx.st['apps'][ctx.app]
        s = ctx.pending.get('app_status') or app.get('app_status') or \
            {'status': 'unknown', 'message': ''}
        units = {}
        for u in app.get('units', []):
            w = ctx.st['units'][u].get('workload') or {}
            units[u] = {'status': w.get('status', 'unknown'), 'message': w.get('message', ''),
                        'status-data': {}}
        emit({'application-status': {'status': s['status'], 'message': s['message'],
                                     'status-data': {}, 'units': units}}, fmt)
        return
    s = ctx.pending.get('status') or ctx.me().get('workload') or \
        {'status': 'unknown', 'message': ''}
    if a.get('--include-data'):
        emit({'status': s['status'], 'message': s['message'], 'status-data': {}}, fmt)
    else:
        emit(s['status'], fmt)


def t_application_version_set(ctx, argv):
    a = Args(argv, [])
    if len(a.pos) != 1:
        raise ToolError('no version specified', 2)
    with ctx.update() as d:
        d['pending']['version'] = a.pos[0]


PORT_RE = re.compile(r'^(\d+)(?:-(\d+))?(?:/(tcp|udp))?$', re.I)


def _norm_port(spec):
    if spec.lower() == 'icmp':
        return 'icmp'
    m = PORT_RE.match(spec)
    if not m:
        raise ToolError('invalid port "%s"' % spec, 2)
    lo, hi, proto = m.group(1), m.group(2), (m.group(3) or 'tcp').lower()
    if not (0 < int(lo) < 65536) or (hi and not int(lo) <= int(hi) < 65536):
        raise ToolError('invalid port range "%s"' % spec, 2)
    return '%s%s/%s' % (lo, '-' + hi if hi and hi != lo else '', proto)


def _port_sort(p):
    if p == 'icmp':
        return (1, 0, '')
    num, _, proto = p.partition('/')
    return (0, int(num.split('-')[0]), proto)


def t_open_port(ctx, argv, close=False):
    a = Args(argv, ['--endpoints'])
    if len(a.pos) != 1:
        raise ToolError('invalid arguments', 2)
    p = _norm_port(a.pos[0])
    ports = ctx.ports()
    if close:
        ports = [x for x in ports if x != p]
    elif p not in ports:
        ports.append(p)
    with ctx.update() as d:
        d['pending']['ports'] = sorted(ports, key=_port_sort)


def t_opened_ports(ctx, argv):
    a = Args(argv, ['--format', '-o', '--output'], ['--endpoints'])
    emit(ctx.ports(), get_format(a))


def _dig(d, key):
    for part in key.split('.'):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def t_action_get(ctx, argv):
    a = Args(argv, ['--format', '-o', '--output'])
    fmt = get_format(a)
    params = ctx.action().get('params', {})
    emit(_dig(params, a.pos[0]) if a.pos else params, fmt)


KEY_RE = re.compile(r'^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$')


def t_action_set(ctx, argv):
    ctx.action()
    a = Args(argv, [])
    if not a.pos:
        raise ToolError('no key=value pairs specified', 2)
    updates = []
    for it in a.pos:
        k, eq, v = it.partition('=')
        if not eq:
            raise ToolError('argument "%s" must be of the form key...=value' % it, 2)
        parts = k.split('.')
        for p in parts:
            if not KEY_RE.match(p):
                raise ToolError('key "%s" must start and end with lowercase alphanumeric, and '
                                'contain only lowercase alphanumeric, hyphens and periods' % p, 2)
        updates.append((parts, v))
    with ctx.update() as d:
        res = d['action_data']['results']
        for parts, v in updates:
            cur = res
            for p in parts[:-1]:
                if not isinstance(cur.get(p), dict):
                    cur[p] = {}
                cur = cur[p]
            cur[parts[-1]] = v


def t_action_fail(ctx, argv):
    ctx.action()
    a = Args(argv, [])
    msg = ' '.join(a.pos) if a.pos else \
        'action failed without reason given, check action for errors'
    with ctx.update() as d:
        d['action_data']['failed'] = msg


def t_action_log(ctx, argv):
    ctx.action()
    a = Args(argv, [])
    if not a.pos:
        raise ToolError('no message specified', 2)
    msg = ' '.join(a.pos)
    with ctx.update() as d:
        d['action_data']['log'].append({'timestamp': time.time(), 'message': msg})
    ctx.store.log(ctx.unit, 'action-log: %s' % msg)


def t_resource_get(ctx, argv):
    a = Args(argv, [])
    if len(a.pos) != 1:
        raise ToolError('missing required resource name', 2)
    app = ctx.st['apps'][ctx.app]
    name = a.pos[0]
    if name not in app.get('resource_meta', {}):
        raise ToolError('resource "%s" not found' % name)
    path = app.get('resources', {}).get(name)
    if not path or not os.path.exists(path):
        raise ToolError('could not download resource: resource "%s" not found' % name)
    sys.stdout.write(path)


def t_storage_list(ctx, argv):
    a = Args(argv, ['--format', '-o', '--output'])
    emit([], get_format(a))


def t_storage_get(ctx, argv):
    raise ToolError('no storage instance specified', 1)


def t_goal_state(ctx, argv):
    a = Args(argv, ['--format', '-o', '--output'])
    app = ctx.st['apps'][ctx.app]
    units = {u: {'status': 'active', 'since': ''} for u in app.get('units', [])}
    rels = {}
    for num, rel in ctx.st['relations'].items():
        ep = rel['endpoints'].get(ctx.app)
        if not ep:
            continue
        entry = rels.setdefault(ep, {})
        for u in rel['members']:
            if u != ctx.unit:
                entry[u] = {'status': 'joined', 'since': ''}
        for other in rel['endpoints']:
            if other != ctx.app:
                entry[other] = {'status': 'joined', 'since': ''}
    emit({'units': units, 'relations': rels}, get_format(a, 'yaml'))


def t_juju_reboot(ctx, argv):
    raise ToolError('juju-reboot is not supported by localjuju')


def t_relation_model_get(ctx, argv):
    a = Args(argv, ['--format', '-o', '--output', '-r', '--relation'])
    ctx.relation(a.get('-r', '--relation'))
    emit({'uuid': ctx.st['uuid']}, get_format(a))


HANDLERS = {
    'config-get': t_config_get, 'relation-ids': t_relation_ids,
    'relation-list': t_relation_list, 'relation-get': t_relation_get,
    'relation-set': t_relation_set, 'unit-get': t_unit_get, 'network-get': t_network_get,
    'is-leader': t_is_leader, 'leader-get': t_leader_get, 'leader-set': t_leader_set,
    'status-set': t_status_set, 'status-get': t_status_get,
    'application-version-set': t_application_version_set,
    'open-port': t_open_port, 'close-port': lambda c, a: t_open_port(c, a, close=True),
    'opened-ports': t_opened_ports, 'action-get': t_action_get, 'action-set': t_action_set,
    'action-fail': t_action_fail, 'action-log': t_action_log, 'resource-get': t_resource_get,
    'storage-list': t_storage_list, 'storage-get': t_storage_get, 'goal-state': t_goal_state,
    'juju-reboot': t_juju_reboot, 'relation-model-get': t_relation_model_get,
}
assert set(HANDLERS) | {'juju-log'} == set(TOOLS)


def main(argv=None):
    argv = sys.argv if argv is None else argv
    tool = os.path.basename(argv[0])
    args = argv[1:]
    if tool in ('hooktool.py', 'hooktool') and args:
        tool, args = args[0], args[1:]
    handler = HANDLERS.get(tool)
    if handler is None:
        sys.stderr.write('ERROR unknown hook tool %s\n' % tool)
        return 1
    try:
        ctx = Ctx()
        handler(ctx, args)
        sys.stdout.flush()
        return 0
    except ToolError as e:
        sys.stderr.write('ERROR %s\n' % e)
        return e.code


if __name__ == '__main__':
    sys.exit(main())
