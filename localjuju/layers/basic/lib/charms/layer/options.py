"""Stand-in for layer:options' ``charms.layer.options`` module.

``get(section=None, option=None, layer_file=None)`` reads the ``options:``
mapping of the built charm's layer.yaml (where the build wrote each layer's
defaults and overrides).  With ``section`` only that layer's mapping is
returned (``{}`` if absent); with ``option`` too, the single value (or None).
"""
import os
from pathlib import Path

import yaml


def _default_layer_file():
    charm_dir = os.environ.get('JUJU_CHARM_DIR') or os.environ.get('CHARM_DIR')
    if charm_dir:
        return Path(charm_dir) / 'layer.yaml'
    # lib/charms/layer/options.py -> charm dir
    return Path(__file__).resolve().parents[3] / 'layer.yaml'


def get(section=None, option=None, layer_file=None):
    if option and not section:
        raise ValueError('an option needs a section')
    path = Path(layer_file) if layer_file else _default_layer_file()
    with path.open() as fp:
        data = yaml.safe_load(fp) or {}
    opts = data.get('options') or {}
    if section is not None:
        opts = opts.get(section) or {}
        if option is not None:
            return opts.get(option)
    return opts
