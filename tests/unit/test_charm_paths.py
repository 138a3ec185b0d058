"""registry_paths is the one place the charm spells a path on the unit."""
import ast

from tests.support.registry_testlib import ROOT

HOST_PREFIXES = ('/etc/', '/srv/', '/var/', '/run/', '/usr/', '/opt/', '/root/', '/home/')


def _charm_sources():
    yield from sorted((ROOT / 'lib' / 'charms' / 'layer').glob('*.py'))
    yield from sorted((ROOT / 'reactive').glob('*.py'))
    yield from sorted(p for p in (ROOT / 'actions').iterdir() if p.is_file())


def spelled_paths(source, name='<source>'):
    """['name:line: value'] of the string constants in source that hold a host path
    (docstrings, which may name paths to explain, aside)."""
    tree = ast.parse(source, name)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return ['{}:{}: {!r}'.format(name, node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings
            and any(prefix in node.value for prefix in HOST_PREFIXES)]


def test_no_module_but_registry_paths_spells_a_host_path():
    sources = [path for path in _charm_sources() if path.name != 'registry_paths.py']
    assert {'registry_files.py', 'registry_juju.py', 'start'} <= {p.name for p in sources}
    assert [spelled for path in sources
            for spelled in spelled_paths(path.read_text(), path.name)] == []


def test_a_spelled_path_is_found_and_a_docstring_is_not():
    source = '"""Writes /etc/x."""\nX = "/srv/data"\ndef f():\n    """Reads /run/y."""\n' \
             '    return "see " + "/var/lib/z"\n'
    assert spelled_paths(source) == ["<source>:2: '/srv/data'", "<source>:5: '/var/lib/z'"]
