"""Actions: parameters parsed and checked against actions.yaml as Juju does, then the
action run on its unit like a hook, with its results, log and failure recorded."""
import copy
import time
import uuid

import yaml

from . import state as S
from .errors import LocalJujuError


def parse_value(text):
    """juju run / config parse k=v values as YAML scalars."""
    try:
        v = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if v is None and text not in ('null', '~') else v


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


def check_type(v, spec):
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


def validate_params(actions, name, params):
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
        if not check_type(v, pspec):
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


class Actions:
    """The model's action verbs (part of Model)."""

    parse_params = staticmethod(parse_params)

    def run(self, unit, action, params=None):
        st = self.load()
        if unit not in st['units']:
            raise LocalJujuError('unit "%s" not found' % unit)
        app = st['apps'][S.app_of(unit)]
        params = validate_params(app.get('actions') or {}, action, params or {})
        with self.store.transaction() as st:
            aid = str(st['next_action'])
            st['next_action'] += 1
            rec = {'id': aid, 'uuid': str(uuid.uuid4()), 'name': action, 'unit': unit,
                   'params': params, 'status': 'pending', 'message': '', 'results': {},
                   'log': [], 'enqueued': time.time()}
            st['actions'][aid] = rec
        with self.store.unit_lock(unit):
            st = self.load()
            with self.store.transaction() as st2:
                st2['actions'][aid]['status'] = 'running'
                st2['actions'][aid]['started'] = time.time()
            ctx_path = self._context(st, unit, action_id=aid)
            self._say('%s: running action %s' % (unit, action))
            self.store.log(unit, 'running action %s (id %s)' % (action, aid))
            rc, output, ctx = self._execute(
                st, unit, ['actions', action], ctx_path,
                self._env(st, unit, ctx_path, action=rec),
                missing=(127, 'action %s has no executable actions/%s' % (action, action)))
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
        for f in followups:
            self._enqueue(**f)
        self._drain()
        return {'id': aid, 'unit': unit, 'action': action, 'status': status,
                'message': message, 'results': results, 'log': [x['message'] for x in ad['log']],
                'return-code': rc, 'output': output}

    def action(self, aid):
        return self.load()['actions'][str(aid)]
