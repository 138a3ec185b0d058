"""Unit tests of localjuju.build (the `charm build` stand-in)."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from localjuju import build  # noqa: E402


def write(path, text, mode=None):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    if mode:
        path.chmod(mode)
    return path


@pytest.fixture
def layer(tmp_path):
    """A tiny charm layer, with some non-charm files around it."""
    d = tmp_path / 'layer'
    write(d / 'layer.yaml', """
        includes:
          - layer:basic
          - layer:status
          - layer:leadership
          - interface:http
        defines:
          greeting:
            type: string
            default: hello
        options:
          basic:
            packages: [coreutils]
          status:
            patch-hookenv: false
          tiny:
            greeting: hi
        repo: https://example.invalid/tiny
        """)
    write(d / 'metadata.yaml', """
        name: tiny
        summary: tiny test charm
        description: tiny
        provides:
          website:
            interface: http
        peers:
          peer:
            interface: tiny-peer
        storage:
          data:
            type: filesystem
            location: /srv/tiny
        """)
    write(d / 'config.yaml', """
        options:
          port:
            type: int
            default: 80
            description: port
        """)
    write(d / 'actions.yaml', """
        do-thing:
          description: does a thing
        """)
    write(d / 'actions' / 'do-thing', "#!/usr/local/sbin/charm-env python3\n")
    write(d / 'actions' / 'helpers.py', "X = 1\n")
    write(d / 'reactive' / 'tiny.py', "from charms.reactive import when\n")
    write(d / 'lib' / 'charms' / 'layer' / 'tiny.py', "Y = 2\n")
    write(d / 'templates' / 'conf.j2', "{{ x }}\n")
    write(d / 'wheelhouse.txt', "passlib==1.7.4\n")
    write(d / 'README.md', "# tiny\n")
    write(d / 'copyright', "nobody\n")
    # things that must not end up in the charm
    write(d / 'tests' / 'test_x.py', "assert False\n")
    write(d / '.git' / 'HEAD', "ref: refs/heads/main\n")
    write(d / 'localjuju' / 'build.py', "# no\n")
    write(d / 'bin' / 'localjuju', "#!/bin/sh\n", mode=0o755)
    write(d / 'scripts' / 'x.sh', "#!/bin/sh\n", mode=0o755)
    write(d / 'tox.ini', "[tox]\n")
    write(d / 'reactive' / '__pycache__' / 'tiny.cpython-311.pyc', "junk")
    return d


def test_assemble_tree(layer, tmp_path):
    out = build.assemble(layer, tmp_path / 'charm')
    files = {str(p.relative_to(out)) for p in out.rglob('*') if p.is_file()}

    for rel in ('metadata.yaml', 'config.yaml', 'actions.yaml', 'layer.yaml',
                'README.md', 'copyright', 'wheelhouse.txt',
                'reactive/tiny.py', 'reactive/status.py',
                'reactive/leadership.py', 'lib/charms/layer/tiny.py',
                'lib/charms/layer/basic.py', 'lib/charms/layer/status.py',
                'lib/charms/layer/options.py', 'lib/charms/leadership.py',
                'templates/conf.j2', 'actions/do-thing', 'actions/helpers.py',
                'hooks/hook.template', 'hooks/relations/http/provides.py',
                'hooks/relations/http/requires.py',
                'hooks/relations/http/__init__.py',
                'hooks/relations/http/interface.yaml'):
        assert rel in files, rel
    for bad in ('tests', '.git', 'localjuju', 'bin', 'scripts', 'tox.ini',
                '__pycache__'):
        assert not any(f == bad or f.startswith(bad + '/') or
                       '/' + bad + '/' in f for f in files), bad

    hooks = set(build.STANDARD_HOOKS)
    for ep in ('website', 'peer'):
        hooks |= {h.format(ep) for h in build.RELATION_HOOKS}
    hooks |= {'data-storage-attached', 'data-storage-detaching'}
    for hook in hooks:
        path = out / 'hooks' / hook
        assert path.exists(), hook
        assert os.access(path, os.X_OK), hook
        assert path.read_text() == (out / 'hooks/hook.template').read_text()
    assert not (out / 'hooks' / 'remove').exists()
    template = (out / 'hooks/hook.template').read_text()
    assert template.startswith('#!/usr/bin/env python3')
    assert 'bootstrap_charm_deps()' in template and 'main()' in template

    assert os.access(out / 'actions/do-thing', os.X_OK)
    assert not os.access(out / 'actions/helpers.py', os.X_OK)

    combined = yaml.safe_load((out / 'layer.yaml').read_text())
    assert combined['includes'] == ['layer:basic', 'layer:status',
                                    'layer:leadership', 'interface:http']
    assert combined['is'] == 'tiny'
    assert combined['repo'] == 'https://example.invalid/tiny'
    opts = combined['options']
    assert opts['basic']['packages'] == ['coreutils']
    assert opts['basic']['use_venv'] is True          # default from defines
    assert opts['status'] == {'patch-hookenv': False}
    assert opts['tiny'] == {'greeting': 'hi'}
    assert 'defines' not in combined

    meta = yaml.safe_load((out / 'metadata.yaml').read_text())
    assert meta['name'] == 'tiny' and 'website' in meta['provides']
    config = yaml.safe_load((out / 'config.yaml').read_text())
    assert config['options']['port']['default'] == 80
    manifest = json.loads((out / build.MANIFEST).read_text())
    assert 'hooks/install' in manifest['files']


def test_tls_client_pulls_interface_and_metadata(layer, tmp_path):
    text = (layer / 'layer.yaml').read_text().replace(
        '  - interface:http', '  - interface:http\n  - layer:tls-client')
    (layer / 'layer.yaml').write_text(text)
    out = build.assemble(layer, tmp_path / 'charm')
    combined = yaml.safe_load((out / 'layer.yaml').read_text())
    assert 'interface:tls-certificates' in combined['includes']
    assert combined['options']['tls-client']['ca_certificate_path'] == ''
    meta = yaml.safe_load((out / 'metadata.yaml').read_text())
    # tls-client's metadata (requires certificates) merged under ours
    assert meta['requires']['certificates']['interface'] == 'tls-certificates'
    assert (out / 'hooks/relations/tls-certificates/requires.py').exists()
    assert (out / 'hooks/certificates-relation-joined').exists()
    assert (out / 'reactive/tls_client.py').exists()


def test_unused_interface_not_copied(layer, tmp_path, capsys):
    text = (layer / 'layer.yaml').read_text().replace(
        '  - interface:http', '  - interface:http\n  - interface:docker-registry')
    (layer / 'layer.yaml').write_text(text)
    out = build.assemble(layer, tmp_path / 'charm')
    assert not (out / 'hooks/relations/docker-registry').exists()
    assert 'docker-registry' in capsys.readouterr().err


def test_our_files_override_lower_layers(layer, tmp_path):
    write(layer / 'hooks' / 'hook.template', "#!/bin/sh\necho ours\n")
    write(layer / 'hooks' / 'start', "#!/bin/sh\necho start\n")
    out = build.assemble(layer, tmp_path / 'charm')
    assert (out / 'hooks/install').read_text() == "#!/bin/sh\necho ours\n"
    assert (out / 'hooks/start').read_text() == "#!/bin/sh\necho start\n"
    assert os.access(out / 'hooks/start', os.X_OK)


def test_unknown_include_fails(layer, tmp_path):
    (layer / 'layer.yaml').write_text(
        'includes: [layer:basic, layer:nonexistent]\n')
    with pytest.raises(build.BuildError, match='layer:nonexistent'):
        build.assemble(layer, tmp_path / 'charm')
    (layer / 'layer.yaml').write_text('includes: [interface:nope]\n')
    with pytest.raises(build.BuildError, match='interface:nope'):
        build.assemble(layer, tmp_path / 'charm')


def test_options_for_undefined_layer_fail(layer, tmp_path):
    (layer / 'layer.yaml').write_text(
        'includes: [layer:basic]\noptions:\n  nosuch: {a: 1}\n')
    with pytest.raises(build.BuildError, match='nosuch'):
        build.assemble(layer, tmp_path / 'charm')


def test_rebuild_removes_stale_files_keeps_state(layer, tmp_path):
    out = build.assemble(layer, tmp_path / 'charm')
    (out / '.unit-state.db').write_text('state')
    (out / 'wheelhouse').mkdir()
    (out / 'wheelhouse' / '.bootstrapped').write_text('')
    (layer / 'templates' / 'conf.j2').unlink()
    (layer / 'templates').rmdir()
    build.assemble(layer, out)
    assert not (out / 'templates').exists()
    assert (out / '.unit-state.db').read_text() == 'state'
    assert (out / 'wheelhouse' / '.bootstrapped').exists()
    assert (out / 'hooks' / 'install').exists()


def test_cli(layer, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, '-m', 'localjuju.build',
                          str(layer), str(tmp_path / 'c')],
                         capture_output=True, text=True, env=env, cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / 'c' / 'hooks' / 'install').exists()
    (layer / 'layer.yaml').write_text('includes: [layer:zzz]\n')
    res = subprocess.run([sys.executable, '-m', 'localjuju.build',
                          str(layer), str(tmp_path / 'd')],
                         capture_output=True, text=True, env=env, cwd=REPO)
    assert res.returncode == 1 and 'layer:zzz' in res.stderr


def test_standins_have_docstrings():
    root = REPO / 'localjuju' / 'layers'
    for py in root.rglob('*.py'):
        if py.name == '__init__.py' and py.stat().st_size == 0:
            continue
        first = py.read_text().lstrip()
        assert first.startswith('"""'), py
    for d in list(root.iterdir()) + list((root / 'interfaces').iterdir()):
        if d.is_dir() and d.name != 'interfaces':
            assert (d / 'layer.yaml').exists() or \
                (d / 'interface.yaml').exists(), d
