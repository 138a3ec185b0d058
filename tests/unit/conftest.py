"""Unit tests of the docker-registry charm layer (pure functions and mocked side effects).

Set-up done here, before any test module imports charm code:
  * charmhelpers refuses to import core.host / fetch unless the platform is Ubuntu: pretend
    it is (the machines the charm runs on are);
  * CHARM_DIR points at the repository root;
  * charms.templating.jinja2.render() reads ``hookenv.config()`` (config-get): answer {}.
"""
import os
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / 'lib'
os.environ['CHARM_DIR'] = str(ROOT)

import charmhelpers.osplatform  # noqa: E402,F401  (patched below: the units are Ubuntu)

_PLATFORM = mock.patch('charmhelpers.osplatform.get_platform', return_value='ubuntu')
_PLATFORM.start()

import charms.templating.jinja2  # noqa: E402,F401  (imports charmhelpers.core.host)

_RENDER_CONFIG = mock.patch('charms.templating.jinja2.hookenv.config', return_value={})
_RENDER_CONFIG.start()

# `charms` is a pkgutil namespace in the venv; make sure the charm's lib/charms is part of it
# even when something imported `charms` before lib was on sys.path.
import charms  # noqa: E402

if str(LIB / 'charms') not in list(charms.__path__):
    charms.__path__.append(str(LIB / 'charms'))

from tests.support import registry_testlib  # noqa: E402


def pytest_unconfigure(config):
    for patcher in (_RENDER_CONFIG, _PLATFORM):
        try:
            patcher.stop()
        except RuntimeError:
            pass


@pytest.fixture(autouse=True)
def fast_bcrypt():
    """bcrypt at cost 4 keeps the suite fast; hashes still verify (the cost is in the hash).
    test_charm_htpasswd checks the production cost with the `production_bcrypt` fixture."""
    from charms.layer import registry_auth
    with mock.patch.object(registry_auth, 'BCRYPT_ROUNDS', 4):
        yield


@pytest.fixture
def production_bcrypt():
    from charms.layer import registry_auth
    with mock.patch.object(registry_auth, 'BCRYPT_ROUNDS', registry_testlib.BCRYPT_ROUNDS):
        yield registry_testlib.BCRYPT_ROUNDS


@pytest.fixture
def defaults():
    """A fresh copy of the real config.yaml defaults."""
    return registry_testlib.defaults()


@pytest.fixture
def fake_docker():
    """A FakeDocker engine installed as registry_container.docker."""
    engine = registry_testlib.FakeDocker()
    with mock.patch('charms.layer.registry_container.docker', engine):
        yield engine


@pytest.fixture
def host_dirs(tmp_path):
    """registry_paths's host paths moved under tmp_path (converge writes there)."""
    from charms.layer import registry_paths
    etc = tmp_path / 'etc' / 'docker' / 'registry'
    values = {
        'HOST_DIR': str(etc),
        'HOST_CONFIG': str(etc / 'config.yml'),
        'HOST_HTPASSWD': str(etc / 'htpasswd'),
        'HOST_ENV': str(etc / 'registry.env'),
        'HOST_TOKEN_CERTS': str(etc / 'token-root-certs.pem'),
        'HOST_DATA': str(tmp_path / 'srv' / 'registry'),
        'HOST_REJECTED': str(etc / 'rejected.json'),
        'HOST_TLS_DIR': str(etc / 'tls'),
        'HOST_TLS_CERT': str(etc / 'tls' / 'server.crt'),
        'HOST_TLS_KEY': str(etc / 'tls' / 'server.key'),
        'HOST_TLS_CA': str(etc / 'tls' / 'ca.crt'),
        'HOST_TLS_CLIENT_CA': str(etc / 'tls' / 'client-ca.crt'),
        'HOST_UNIT_CLIENT_CERT': str(etc / 'tls' / 'unit-client.crt'),
        'HOST_UNIT_CLIENT_KEY': str(etc / 'tls' / 'unit-client.key'),
    }
    with mock.patch.multiple(registry_paths, **values):
        yield values


@pytest.fixture
def hookenv():
    """registry_juju.hookenv with the config and addresses mocked."""
    from charms.layer import registry_juju
    from tests.support.registry_testlib import UNIT_ADDRESS, defaults
    h = registry_juju.hookenv
    with mock.patch.multiple(h, config=mock.DEFAULT, resource_get=mock.DEFAULT,
                             network_get=mock.DEFAULT, unit_private_ip=mock.DEFAULT,
                             leader_get=mock.DEFAULT, local_unit=mock.DEFAULT,
                             charm_dir=mock.DEFAULT, log=mock.DEFAULT,
                             opened_ports=mock.DEFAULT, open_port=mock.DEFAULT,
                             close_port=mock.DEFAULT,
                             relation_ids=mock.DEFAULT) as m:
        m['config'].return_value = defaults()
        m['network_get'].return_value = {'ingress-addresses': [UNIT_ADDRESS]}
        m['unit_private_ip'].return_value = '192.0.2.9'
        m['leader_get'].return_value = 'secret'
        m['local_unit'].return_value = 'docker-registry/0'
        m['charm_dir'].return_value = '/charm'
        m['opened_ports'].return_value = []
        m['resource_get'].return_value = False
        m['relation_ids'].return_value = []
        yield m
