"""The built charm installs on a fresh unit as on Juju: layer:basic's bootstrap builds the
unit's venv from the wheelhouse alone (pip --no-index), with no Rust toolchain and no wheels
made beforehand (LOCALJUJU_WHEEL_CACHE=off), on this machine's Python 3.11."""
import os

import pytest

from tests.support.deployment import APP, free_port_pair

pytestmark = pytest.mark.functional

UNIT = APP + '/0'


def test_a_fresh_unit_bootstraps_from_the_wheelhouse_alone(deploy_factory, monkeypatch):
    monkeypatch.setenv('LOCALJUJU_WHEEL_CACHE', 'off')
    port, debug = free_port_pair()
    d = deploy_factory(config={'registry-port': port, 'debug-port': debug})
    assert d.model.load()['apps'][APP]['wheels'] is None
    assert d.unit_status() == {'current': 'active',
                               'message': 'Ready at {}:{} (http)'.format(d.address(), port)}
    assert all(rc == 0 for _, rc in d.model.hooks_run(UNIT))
    log = d.model.log(UNIT)
    # layer:basic built the sdists itself (the ones with no universal wheel) ...
    assert 'Building wheel for pyyaml' in log and 'Building wheel for MarkupSafe' in log, log
    assert 'Successfully installed' in log
    # ... with no compiler for Rust on the machine, and into the venv beside the charm dir.
    assert d.on_machine(UNIT, 'sh', '-c', 'command -v cargo rustc', check=False).returncode
    charm_dir = d.model.load()['units'][UNIT]['charm_dir']
    versions = d.on_machine(UNIT, charm_dir + '/../.venv/bin/python', '-c',
                            'import importlib.metadata as m, charms.reactive, passlib, yaml; '
                            'print(m.version("charmhelpers"), yaml.__version__)').stdout
    assert versions.split() == ['0.20.24', '6.0.2']


def test_later_units_install_the_same_versions_from_prepared_wheels(deploy_factory):
    """localjuju's wheel cache spares later units the compiling, not the bootstrap."""
    port, debug = free_port_pair()
    d = deploy_factory(config={'registry-port': port, 'debug-port': debug})
    wheels = d.model.load()['apps'][APP]['wheels']
    assert wheels and any(n.startswith('PyYAML-6.0.2-cp') for n in os.listdir(wheels))
    assert d.unit_status()['current'] == 'active'
    log = d.model.log(UNIT)
    assert 'Building wheel for' not in log, log
    assert os.path.join(wheels, 'PyYAML-6.0.2-') in log     # pip took the prepared wheel
    charm_dir = d.model.load()['units'][UNIT]['charm_dir']
    assert os.path.exists(os.path.join(charm_dir, 'wheelhouse', '.bootstrapped'))
