"""`python -m localjuju <verb>`: juju-like verbs over a local model."""
import argparse
import json
import sys

import yaml

from .errors import LocalJujuError
from .model import Model


def _dump(data, fmt='yaml'):
    if fmt == 'json':
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        sys.stdout.write(yaml.safe_dump(data, default_flow_style=False, sort_keys=True))


def _kv(items):
    out = {}
    for it in items or []:
        k, eq, v = it.partition('=')
        if not eq:
            raise LocalJujuError('expected key=value, got "%s"' % it)
        out[k] = v
    return out


def parser():
    p = argparse.ArgumentParser(prog='localjuju', description='local Juju agent stand-in')
    p.add_argument('--model', '-m', default=None, help='model name (default local)')
    p.add_argument('--home', default=None, help='state root (default $LOCALJUJU_HOME or '
                   '/var/lib/localjuju)')
    p.add_argument('--quiet', '-q', action='store_true', help='do not echo hooks as they run')
    sub = p.add_subparsers(dest='verb', required=True)

    d = sub.add_parser('deploy')
    d.add_argument('path', help='a built charm directory')
    d.add_argument('app', nargs='?', default='docker-registry')
    d.add_argument('-n', '--num-units', type=int, default=1)
    d.add_argument('--config', action='append', default=[], metavar='K=V')
    d.add_argument('--resource', action='append', default=[], metavar='NAME=PATH')
    d.add_argument('--preload-image', default=None, metavar='ARCHIVE')
    d.add_argument('--publish-ports', action='store_true',
                   help='machines serve docker run -p of the registry\'s ports on their address')

    c = sub.add_parser('config')
    c.add_argument('app')
    c.add_argument('values', nargs='*', metavar='K=V')
    c.add_argument('--reset', action='append', default=[], metavar='KEY')

    for verb in ('integrate', 'relate', 'remove-relation'):
        r = sub.add_parser(verb)
        r.add_argument('a')
        r.add_argument('b')

    a = sub.add_parser('add-unit')
    a.add_argument('app')
    a.add_argument('-n', '--num-units', type=int, default=1)

    ru = sub.add_parser('remove-unit')
    ru.add_argument('units', nargs='+')

    run = sub.add_parser('run')
    run.add_argument('unit')
    run.add_argument('action')
    run.add_argument('params', nargs='*', metavar='K=V')
    run.add_argument('--wait', nargs='?', const='', default=None)
    run.add_argument('--format', choices=('yaml', 'json'), default='yaml')

    s = sub.add_parser('status')
    s.add_argument('--format', choices=('yaml', 'json'), default='yaml')

    h = sub.add_parser('hook')
    h.add_argument('unit')
    h.add_argument('hook')
    h.add_argument('-r', '--relation', default=None)
    h.add_argument('--remote-unit', default=None)

    sub.add_parser('update-status')

    rf = sub.add_parser('refresh')
    rf.add_argument('app')
    rf.add_argument('--path', default=None, help='a new build of the same charm')
    rf.add_argument('--switch', default=None, metavar='PATH',
                    help='another charm (refused when a relation in use would break)')

    rb = sub.add_parser('reboot-machine', help='stop and start a machine; its unit then '
                        'runs the start hook, as on Juju')
    rb.add_argument('machine')

    um = sub.add_parser('upgrade-machine')
    um.add_argument('machine')
    um.add_argument('phase', choices=('prepare', 'complete'))

    sub.add_parser('destroy')

    rs = sub.add_parser('resolved')
    rs.add_argument('unit')

    rr = sub.add_parser('remote-run', help='run a verb of a scripted remote app, e.g. '
                        '"easyrsa rotate-ca"')
    rr.add_argument('remote')
    rr.add_argument('remote_verb')
    rr.add_argument('args', nargs='*')

    hist = sub.add_parser('show-status-log')
    hist.add_argument('unit')

    lg = sub.add_parser('debug-log')
    lg.add_argument('unit')
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    m = Model(home=args.home, name=args.model, echo=not args.quiet)
    fmt = getattr(args, 'format', 'yaml')
    try:
        v = args.verb
        if v == 'deploy':
            res = {}
            for it in args.resource:
                k, eq, path = it.partition('=')
                if not eq:
                    raise LocalJujuError('--resource expects NAME=PATH')
                res[k] = path
            m.deploy(args.path, args.app, n=args.num_units, config=_kv(args.config),
                     resources=res, preload_image=args.preload_image,
                     publish_ports=args.publish_ports)
            _dump(m.status())
        elif v == 'config':
            out = m.config(args.app, _kv(args.values), args.reset)
            if not args.values and not args.reset:
                _dump(out)
        elif v in ('integrate', 'relate'):
            m.integrate(args.a, args.b)
        elif v == 'remove-relation':
            m.remove_relation(args.a, args.b)
        elif v == 'add-unit':
            m.add_unit(args.app, args.num_units)
        elif v == 'remove-unit':
            for u in args.units:
                m.remove_unit(u)
        elif v == 'run':
            params = Model.parse_params(args.params)
            r = m.run(args.unit, args.action, params)
            out = {'id': r['id'], 'status': r['status'], 'results': r['results']}
            if r['message']:
                out['message'] = r['message']
            if r['log']:
                out['log'] = r['log']
            if r['status'] != 'completed' and r.get('output'):
                out['output'] = r['output'][-4000:]
            _dump({args.unit: out}, fmt)
            return 0 if r['status'] == 'completed' else 1
        elif v == 'status':
            _dump(m.status(), fmt)
        elif v == 'hook':
            r = m.hook(args.unit, args.hook, rel=args.relation, remote=args.remote_unit)
            _dump(r)
            return 0 if r['rc'] in (0, None) else 1
        elif v == 'update-status':
            m.update_status()
        elif v == 'refresh':
            m.refresh(args.app, args.path, switch=args.switch)
        elif v == 'reboot-machine':
            m.reboot_machine(args.machine)
        elif v == 'upgrade-machine':
            m.upgrade_machine(args.machine, args.phase)
        elif v == 'destroy':
            m.destroy()
        elif v == 'resolved':
            m.resolve(args.unit)
        elif v == 'remote-run':
            out = m.remote_run(args.remote, args.remote_verb, *args.args)
            if out:
                _dump(out)
        elif v == 'show-status-log':
            for s, msg in m.status_history(args.unit):
                print('%-12s %s' % (s, msg))
        elif v == 'debug-log':
            sys.stdout.write(m.log(args.unit))
        return 0
    except LocalJujuError as e:
        print('ERROR %s' % e, file=sys.stderr)
        return 1
