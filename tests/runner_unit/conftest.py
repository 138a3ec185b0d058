"""Each runner test leases loopback addresses from its own pool, so that its models get
127.0.0.11, .12, ... whatever other models on this host hold. `model`: a two-unit model of
a tiny charm without machines."""
import pytest

from localjuju import Model, addresses
from tests.support.fake_charm import write_charm


@pytest.fixture(autouse=True)
def private_address_leases(tmp_path, monkeypatch):
    lease_dir = str(tmp_path / 'address-leases')
    monkeypatch.setenv('LOCALJUJU_LEASE_DIR', lease_dir)
    monkeypatch.setattr(addresses, 'LEASE_DIR', lease_dir)


@pytest.fixture
def model(tmp_path):
    charm = write_charm(str(tmp_path / 'charm'))
    m = Model(home=str(tmp_path / 'home'), name='t', machines=False)
    m.deploy(charm, 'fake', n=2)
    return m
