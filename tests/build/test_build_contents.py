"""What `charm build` makes of this layer: only what a charm needs, and a wheelhouse that
layer:basic can install on a unit with no index and no Rust toolchain."""
import os
import re
import tarfile

import yaml

# What a built reactive charm holds: charm-tools' own files, layer:basic's bootstrap (bin/,
# hooks/, lib/, wheelhouse), the metadata, the charm's code, and the included layers' charm
# files (debug-scripts from layer:debug and layer:tls-client, LICENSE and copyright files).
EXPECTED = {
    '.build.manifest', 'LICENSE', 'README.md', 'actions', 'actions.yaml', 'bin',
    'config.yaml', 'copyright', 'copyright.layer-basic', 'copyright.layer-options',
    'copyright.layer-status', 'debug-scripts', 'hooks', 'layer.yaml', 'lib',
    'metadata.yaml', 'reactive', 'templates', 'version', 'wheelhouse',
    'wheelhouse-constraints.txt', 'wheelhouse.txt',
}


def test_the_build_holds_only_what_a_charm_needs(charm_path):
    assert set(os.listdir(charm_path)) == EXPECTED


def test_the_build_includes_the_upstream_layers_and_interfaces(charm_path):
    with open(os.path.join(charm_path, 'layer.yaml')) as f:
        includes = yaml.safe_load(f)['includes']
    for needed in ('layer:basic', 'layer:options', 'layer:status', 'layer:leadership',
                   'layer:tls-client', 'interface:tls-certificates', 'interface:http',
                   'interface:docker-registry', 'interface:nrpe-external-master',
                   'interface:peer-discovery'):
        assert needed in includes
    relations = os.listdir(os.path.join(charm_path, 'hooks', 'relations'))
    assert set(relations) >= {'tls-certificates', 'http', 'docker-registry',
                              'nrpe-external-master', 'peer-discovery'}
    assert os.path.isfile(os.path.join(charm_path, 'lib', 'charms', 'layer', 'basic.py'))
    assert os.path.isfile(os.path.join(charm_path, 'reactive', 'tls_client.py'))


def _wheelhouse(charm_path):
    """{project name (normalised): (version, file name)} of the built wheelhouse."""
    found = {}
    for name in os.listdir(os.path.join(charm_path, 'wheelhouse')):
        if name.endswith('.whl'):
            project, version = name.split('-')[:2]
        else:
            project, version = re.sub(r'\.(tar\.gz|zip)$', '', name).rsplit('-', 1)
        found[re.sub(r'[-_.]+', '-', project).lower()] = (version, name)
    return found


def _version(text):
    return tuple(int(x) for x in re.findall(r'\d+', text)[:3])


def test_every_wheelhouse_entry_installs_on_any_python_3(charm_path):
    # A wheel built for this machine's Python (cp311) would not install on 3.10 or 3.12.
    for version, name in _wheelhouse(charm_path).values():
        assert name.endswith(('.tar.gz', '.zip', '-none-any.whl')), name


def test_the_charms_setuptools_pin_replaces_layer_basics(charm_path):
    """layer:basic pins setuptools<62.2 below Python 3.12; pbr (from charmhelpers) needs
    >=64 to build from its sdist, so a plain `charm build`'s unit fails its first hook
    unless the charm's own pin wins (the bug this guards)."""
    with open(os.path.join(charm_path, 'wheelhouse.txt')) as f:
        lines = [line.strip() for line in f]
    active = [line for line in lines if re.match(r'setuptools\b(?!-)', line)]
    assert active == ['setuptools==70.3.0']
    overridden = [line for line in lines if line.startswith('# setuptools<62.2.0')]
    assert overridden and all('overridden by docker-registry' in x for x in overridden)
    setuptools = _version(_wheelhouse(charm_path)['setuptools'][0])
    assert setuptools >= (64, 0, 0)


def test_the_sdists_left_build_with_the_wheelhouses_setuptools(charm_path):
    wheelhouse = _wheelhouse(charm_path)
    setuptools = _version(wheelhouse['setuptools'][0])
    sdists = [name for version, name in wheelhouse.values() if name.endswith('.tar.gz')]
    assert sdists, 'every entry became a wheel: nothing is built on the unit any more'
    for name in sdists:
        with tarfile.open(os.path.join(charm_path, 'wheelhouse', name)) as tar:
            member = next((m for m in tar.getmembers()
                           if m.name.count('/') == 1 and m.name.endswith('/pyproject.toml')),
                          None)
            text = tar.extractfile(member).read().decode() if member else ''
        for op, bound in re.findall(r'"setuptools\s*(>=|<)\s*([\d.]+)', text):
            if op == '>=':
                assert setuptools >= _version(bound), (name, op, bound)
            else:
                assert setuptools < _version(bound), (name, op, bound)
