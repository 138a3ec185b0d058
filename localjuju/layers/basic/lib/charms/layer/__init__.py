"""Stand-in for ``charms.layer`` as shipped by layer:basic (+ layer:options).

Implements:
  * ``charms.layer.options``: callable module.  ``options(section=None)``
    and ``options.get(section=None, option=None)`` return the ``options:``
    section of the built charm's layer.yaml (see ``options.py``).
  * ``import_layer_libs()``: import every ``charms.layer.<x>`` module so
    that ``from charms import layer; layer.status.active(...)`` works.
"""
import sys
import types
from importlib import import_module
from pathlib import Path


def import_layer_libs():
    """Import all layer libraries found in lib/charms/layer of the charm."""
    here = Path(__file__).parent
    for entry in sorted(here.iterdir()):
        name = entry.stem
        if name.startswith('_') or name in ('basic', 'execd'):
            continue
        if entry.suffix == '.py' or (entry.is_dir() and name != '__pycache__'):
            import_module('{}.{}'.format(__name__, name))


class _CallableOptionsModule(types.ModuleType):
    """Module type that makes ``charms.layer.options(...)`` callable."""

    def __call__(self, section=None, layer_file=None):
        return self.get(section=section, layer_file=layer_file)


def _make_options_callable():
    mod = import_module(__name__ + '.options')
    if not isinstance(mod, _CallableOptionsModule):
        mod.__class__ = _CallableOptionsModule
    setattr(sys.modules[__name__], 'options', mod)


try:
    _make_options_callable()
except ImportError:  # PyYAML missing: retried by basic.bootstrap_charm_deps
    pass
