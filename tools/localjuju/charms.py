"""Built charms: copying one in, reading its metadata, config and actions, deploying its
files into a unit's charm dir, and typing config values as its config.yaml says."""
import os
import shutil
import tempfile

import yaml

from . import state as S
from .errors import LocalJujuError


def load_yaml(path, default=None):
    try:
        with open(path) as f:
            return yaml.safe_load(f) or default
    except FileNotFoundError:
        return default


def copy_charm(path, out):
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


def charm_meta(charm_dir):
    meta = load_yaml(os.path.join(charm_dir, 'metadata.yaml'), {})
    eps = {}
    for role in ('provides', 'requires', 'peers'):
        for ep, spec in (meta.get(role) or {}).items():
            spec = spec if isinstance(spec, dict) else {'interface': spec}
            eps[ep] = {'role': role, 'interface': spec.get('interface'),
                       'scope': spec.get('scope', 'global')}
    cfg = load_yaml(os.path.join(charm_dir, 'config.yaml'), {}) or {}
    actions = load_yaml(os.path.join(charm_dir, 'actions.yaml'), {}) or {}
    return {
        'charm_name': meta.get('name'),
        'endpoints': eps,
        'extra_bindings': list((meta.get('extra-bindings') or {}).keys()),
        'resource_meta': meta.get('resources') or {},
        'options': cfg.get('options') or {},
        'actions': actions,
    }


def charm_files(charm_dir):
    """Every file and symlink of a charm directory, relative to it."""
    found = []
    for root, dirs, files in os.walk(charm_dir):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            found.append(os.path.relpath(os.path.join(root, name), charm_dir))
    return sorted(found)


def sync_charm(src, dst):
    """Deploy a charm into a unit's charm dir, as Juju's charm deployer does on an
    upgrade: files of the previous charm that the new one lacks are removed (old
    wheelhouse sdists among them), files created at run time (.unit-state.db, the
    wheelhouse markers) are kept."""
    os.makedirs(dst, exist_ok=True)
    record = dst + '.files.json'
    new_files = charm_files(src)
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


def coerce_option(app, key, value):
    """value typed as the application's option key says (LocalJujuError when it cannot be)."""
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
