"""A small stand-in for ``charm build`` (juju/charm-tools).

``assemble(layer_dir, out_dir)`` turns a charms.reactive layer into a
runnable charm directory, using the layer stand-ins under
``localjuju/layers`` for the layers it includes:

* ``includes:`` of every layer.yaml are resolved recursively:
  ``layer:X`` -> ``localjuju/layers/X``, ``interface:Y`` ->
  ``localjuju/layers/interfaces/Y`` (``layer:options`` is part of the basic
  stand-in); anything else fails with a BuildError naming what exists.
* Layer files are copied lowest layer first, the charm's own layer last (it
  overrides).  Only charm files are taken: the root *.yaml files,
  README.md, icon.svg, copyright, wheelhouse.txt and the directories
  reactive/ lib/ actions/ templates/ hooks/ (``ignore:`` / ``exclude:``
  patterns of a layer.yaml are honoured); never tests/, .git, localjuju/...
* config.yaml options, metadata.yaml and actions.yaml are merged (lower
  layers first, the charm's layer wins; ``config: deletes:`` /
  ``metadata: deletes:`` in layer.yaml drop keys), wheelhouse.txt lines are
  concatenated (a later layer's requirement replaces an earlier one).
* The combined layer.yaml has ``includes`` (every included layer and
  interface, lowest first), ``options`` (one section per layer: its
  ``defines`` defaults overridden by the ``options`` any layer sets for it;
  the charm's own layer section is named after the charm) and ``is``.
  Options for a layer that defines none fail the build, as in charm-tools.
* Each interface used by an endpoint of metadata.yaml is copied to
  ``hooks/relations/<interface>/`` (with an ``__init__.py``).
* ``hooks/hook.template`` (from layer:basic) is written, executable, for
  each standard hook, for each provides/requires/peers endpoint
  (``-relation-created/joined/changed/departed/broken``) and each storage
  (``-storage-attached/detaching``), unless a layer ships that hook file.
* Action scripts are made executable.  A ``.build.manifest`` lists the
  files written; a rebuild into the same directory first removes the files
  of the previous build and keeps everything else (e.g. the unit's
  ``.unit-state.db``), like an upgrade of the charm directory.

Run as ``python -m localjuju.build LAYER_DIR OUT_DIR``.
"""
import argparse
import fnmatch
import json
import os
import re
import shutil
import stat
import sys
from pathlib import Path

import yaml

LAYERS_ROOT = Path(__file__).resolve().parent / 'layers'
MANIFEST = '.build.manifest'
HOOK_TEMPLATE = 'hooks/hook.template'

STANDARD_HOOKS = (
    'install', 'config-changed', 'leader-elected', 'leader-settings-changed',
    'start', 'stop', 'update-status', 'upgrade-charm', 'pre-series-upgrade',
    'post-series-upgrade',
)
RELATION_HOOKS = ('{}-relation-created', '{}-relation-joined',
                  '{}-relation-changed', '{}-relation-departed',
                  '{}-relation-broken')
STORAGE_HOOKS = ('{}-storage-attached', '{}-storage-detaching')

# files merged rather than copied
MERGED_FILES = ('layer.yaml', 'metadata.yaml', 'config.yaml', 'actions.yaml',
                'wheelhouse.txt')
ROOT_FILES = ('README.md', 'icon.svg', 'copyright')
LAYER_DIRS = ('reactive', 'lib', 'actions', 'templates', 'hooks')
SKIP_NAMES = ('__pycache__', '.git', '.tox', '.pytest_cache')
ALIASES = {'layer:options': 'layer:basic'}


class BuildError(Exception):
    pass


class Layer:
    def __init__(self, spec, directory, kind):
        self.spec = spec              # e.g. 'layer:basic', or None for ours
        self.directory = Path(directory)
        self.kind = kind              # 'layer' or 'interface'
        self.name = spec.split(':', 1)[1] if spec else None
        self.config = _load_yaml(self.directory / 'layer.yaml') or {}
        if kind == 'interface':
            iface = _load_yaml(self.directory / 'interface.yaml') or {}
            self.name = iface.get('name', self.name)
            self.config = dict(self.config, ignore=iface.get('ignore', []))

    @property
    def ignores(self):
        found = []
        for key in ('ignore', 'exclude'):
            value = self.config.get(key) or []
            if isinstance(value, dict):  # {layer_name: [...]} form
                value = [p for v in value.values() for p in v]
            found += list(value)
        return found

    def __repr__(self):
        return 'Layer({!r}, {})'.format(self.spec, self.directory)


def _load_yaml(path):
    if not Path(path).exists():
        return None
    try:
        with open(path) as fp:
            return yaml.safe_load(fp)
    except yaml.YAMLError as exc:
        raise BuildError('{}: invalid YAML: {}'.format(path, exc))


def _available():
    layers = sorted('layer:' + p.name for p in LAYERS_ROOT.iterdir()
                    if p.is_dir() and p.name != 'interfaces')
    ifaces = sorted('interface:' + p.name
                    for p in (LAYERS_ROOT / 'interfaces').iterdir()
                    if p.is_dir())
    return ', '.join(layers + ifaces)


def _locate(spec):
    spec = ALIASES.get(spec, spec)
    kind, _, name = spec.partition(':')
    if kind == 'layer' and name and name != 'interfaces':
        path = LAYERS_ROOT / name
    elif kind == 'interface' and name:
        path = LAYERS_ROOT / 'interfaces' / name
    else:
        raise BuildError('cannot resolve include {!r}: only layer:NAME and '
                         'interface:NAME are supported'.format(spec))
    if not path.is_dir():
        raise BuildError('unknown include {!r}: no stand-in at {} '
                         '(available: {})'.format(spec, path, _available()))
    return spec, path, kind


def resolve(layer_dir):
    """Return (layers, interfaces) in build order; ours is layers[-1]."""
    top = Layer(None, layer_dir, 'layer')
    layers, interfaces, done, active = [], [], set(), []

    def visit(spec):
        spec, path, kind = _locate(spec)
        if spec in done:
            return
        if spec in active:
            raise BuildError('include cycle: {}'.format(
                ' -> '.join(active + [spec])))
        active.append(spec)
        layer = Layer(spec, path, kind)
        for inc in layer.config.get('includes') or []:
            visit(inc)
        active.pop()
        done.add(spec)
        (interfaces if kind == 'interface' else layers).append(layer)

    for inc in top.config.get('includes') or []:
        visit(inc)
    layers.append(top)
    return layers, interfaces


def _ignored(rel, patterns):
    parts = rel.split('/')
    for pat in patterns:
        pat = pat.rstrip('/')
        if fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel, pat + '/*'):
            return True
        if '/' not in pat and any(fnmatch.fnmatch(p, pat) for p in parts):
            return True
    return False


def _layer_files(layer):
    """Yield relative paths of the charm files a layer contributes."""
    base = layer.directory
    candidates = []
    for entry in sorted(base.iterdir()):
        if entry.name.startswith('.') or not entry.is_file():
            continue
        if entry.name in MERGED_FILES:
            continue
        if entry.suffix == '.yaml' or entry.name in ROOT_FILES:
            candidates.append(entry.name)
    for dirname in LAYER_DIRS:
        root = base / dirname
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_NAMES)
            for fn in sorted(filenames):
                if fn.endswith(('.pyc', '.pyo')):
                    continue
                candidates.append(
                    str((Path(dirpath) / fn).relative_to(base)))
    for rel in candidates:
        if not _ignored(rel, layer.ignores):
            yield rel


def _interface_files(iface):
    for dirpath, dirnames, filenames in os.walk(iface.directory):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_NAMES)
        for fn in sorted(filenames):
            if fn.endswith(('.pyc', '.pyo')):
                continue
            rel = str((Path(dirpath) / fn).relative_to(iface.directory))
            if not _ignored(rel, iface.ignores):
                yield rel


def deep_merge(lower, upper):
    """Merge mappings recursively; ``upper`` wins, other types replaced."""
    if isinstance(lower, dict) and isinstance(upper, dict):
        out = dict(lower)
        for key, value in upper.items():
            out[key] = deep_merge(out[key], value) if key in out else value
        return out
    return upper


def _delete_keys(data, keys, prefix=''):
    for key in keys or []:
        if prefix:
            key = prefix + '.' + key
        node, parts = data, key.split('.')
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(parts[-1], None)


_TYPES = {'string': str, 'boolean': bool, 'array': list, 'object': dict,
          'integer': int, 'number': (int, float)}


def combine_layer_yaml(layers, interfaces, charm_name):
    sections, defined, merged_options = {}, set(), {}
    for layer in layers:
        name = layer.name or charm_name
        defines = layer.config.get('defines') or {}
        defined.add(name)
        sections[name] = {k: v.get('default') for k, v in defines.items()
                          if isinstance(v, dict) and 'default' in v}
        merged_options = deep_merge(merged_options,
                                    layer.config.get('options') or {})
    unknown = set(merged_options) - defined - {'charms.reactive'}
    if unknown:
        raise BuildError('Options set for undefined layer(s): {}'.format(
            ', '.join(sorted(unknown))))
    for name, values in merged_options.items():
        sections.setdefault(name, {}).update(values or {})
    for layer in layers:  # light type check against the definitions
        name = layer.name or charm_name
        for opt, spec in (layer.config.get('defines') or {}).items():
            expected = _TYPES.get((spec or {}).get('type'))
            value = sections[name].get(opt)
            if expected and value is not None and (
                    not isinstance(value, expected) or
                    (expected is int and isinstance(value, bool))):
                raise BuildError('Invalid value for option {}.{}: {!r} is '
                                 'not of type {}'.format(name, opt, value,
                                                         spec['type']))
    top = layers[-1].config
    data = {k: v for k, v in top.items()
            if k not in ('includes', 'defines', 'options')}
    data['includes'] = [layer.spec for layer in layers[:-1]] + \
        [iface.spec for iface in interfaces]
    data['options'] = sections
    data.setdefault('is', charm_name)
    return data


def _merge_yaml(layers, filename):
    merged, found = {}, False
    for layer in layers:
        data = _load_yaml(layer.directory / filename)
        if data is None:
            continue
        found = True
        merged = deep_merge(merged, data)
    return merged if found else None


def _merge_wheelhouse(layers):
    reqs = {}
    for layer in layers:
        path = layer.directory / 'wheelhouse.txt'
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            stripped = line.split('#', 1)[0].strip()
            if not stripped:
                continue
            key = re.split(r'[<>=!~;\[ @]', stripped, 1)[0].lower()
            key = key.replace('_', '-')
            reqs.pop(key, None)
            reqs[key] = stripped
    return list(reqs.values()) if reqs else None


def _write(out, rel, text, written, mode=None):
    target = out / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    target.write_text(text)
    if mode is not None:
        target.chmod(mode)
    written.append(rel)


def _copy(src, out, rel, written):
    target = out / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        target.unlink()
    shutil.copy2(src, target)
    written.append(rel)


def _clean_previous(out):
    manifest = out / MANIFEST
    if not manifest.exists():
        return
    try:
        previous = json.loads(manifest.read_text()).get('files', [])
    except ValueError:
        previous = []
    parents = set()
    for rel in previous:
        path = out / rel
        if path.is_file() or path.is_symlink():
            path.unlink()
        parents.update(path.parents)
    # drop the directories this left empty (deepest first)
    for directory in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        if out in directory.parents and directory.is_dir() and \
                not any(directory.iterdir()):
            directory.rmdir()


def _dump(data):
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False)


def assemble(layer_dir, out_dir):
    """Build the charm of ``layer_dir`` into ``out_dir``; return its Path."""
    layer_dir = Path(layer_dir).resolve()
    out = Path(out_dir).resolve()
    if not (layer_dir / 'layer.yaml').exists():
        raise BuildError('{}: no layer.yaml, not a layer'.format(layer_dir))
    if out == layer_dir:
        raise BuildError('output directory is the layer itself')
    layers, interfaces = resolve(layer_dir)

    metadata = _merge_yaml(layers, 'metadata.yaml')
    if not metadata:
        raise BuildError('no metadata.yaml in {}'.format(layer_dir))
    for layer in layers:
        _delete_keys(metadata, (layer.config.get('metadata') or {})
                     .get('deletes'))
    charm_name = metadata.get('name')
    if not charm_name:
        raise BuildError('metadata.yaml has no name')

    out.mkdir(parents=True, exist_ok=True)
    _clean_previous(out)
    written = []

    for layer in layers:
        for rel in _layer_files(layer):
            _copy(layer.directory / rel, out, rel, written)

    # merged files
    _write(out, 'metadata.yaml', _dump(metadata), written)
    config = _merge_yaml(layers, 'config.yaml')
    if config is not None:
        config.setdefault('options', {})
        for layer in layers:
            _delete_keys(config['options'],
                         (layer.config.get('config') or {}).get('deletes'))
        _write(out, 'config.yaml', _dump(config), written)
    actions = _merge_yaml(layers, 'actions.yaml')
    if actions is not None:
        _write(out, 'actions.yaml', _dump(actions), written)
    wheelhouse = _merge_wheelhouse(layers)
    if wheelhouse is not None:
        _write(out, 'wheelhouse.txt', '\n'.join(wheelhouse) + '\n', written)
    _write(out, 'layer.yaml',
           _dump(combine_layer_yaml(layers, interfaces, charm_name)), written)

    # interfaces bound to endpoints
    endpoints = []
    for role in ('provides', 'requires', 'peers'):
        for name, spec in (metadata.get(role) or {}).items():
            endpoints.append((role, name, (spec or {}).get('interface')))
    used = {iface for _, _, iface in endpoints}
    for iface in interfaces:
        if iface.name not in used:
            print('build: warning: {} is included but no endpoint of '
                  'metadata.yaml uses it'.format(iface.spec), file=sys.stderr)
            continue
        base = Path('hooks/relations') / iface.name
        for rel in _interface_files(iface):
            _copy(iface.directory / rel, out, str(base / rel), written)
        if not (out / base / '__init__.py').exists():
            _write(out, str(base / '__init__.py'), '', written)

    # hooks from the template
    template = out / HOOK_TEMPLATE
    if not template.exists():
        raise BuildError('no layer provides {} (include layer:basic)'.format(
            HOOK_TEMPLATE))
    text = template.read_text()
    hooks = list(STANDARD_HOOKS)
    for _, name, _ in endpoints:
        hooks += [h.format(name) for h in RELATION_HOOKS]
    for name in metadata.get('storage') or {}:
        hooks += [h.format(name) for h in STORAGE_HOOKS]
    for hook in hooks:
        rel = 'hooks/' + hook
        if rel in written:  # a layer ships its own implementation
            (out / rel).chmod((out / rel).stat().st_mode | 0o111)
            continue
        _write(out, rel, text, written, mode=0o755)

    # executable actions
    action_names = set((actions or {}).keys())
    actions_dir = out / 'actions'
    if actions_dir.is_dir():
        for entry in actions_dir.iterdir():
            if not entry.is_file():
                continue
            with entry.open('rb') as fp:
                shebang = fp.read(2) == b'#!'
            if shebang or entry.name in action_names:
                entry.chmod(entry.stat().st_mode |
                            stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    written = sorted(set(written))
    (out / MANIFEST).write_text(json.dumps({
        'layers': [layer.spec or str(layer.directory) for layer in layers],
        'interfaces': [iface.spec for iface in interfaces],
        'files': written,
    }, indent=1) + '\n')
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m localjuju.build',
        description='Assemble a charm from a reactive layer (charm build '
                    'stand-in).')
    parser.add_argument('layer', help='layer directory (has layer.yaml)')
    parser.add_argument('out', help='charm directory to write')
    args = parser.parse_args(argv)
    try:
        out = assemble(args.layer, args.out)
    except BuildError as exc:
        print('build failed: {}'.format(exc), file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
