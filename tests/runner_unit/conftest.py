"""Each runner test leases loopback addresses from its own pool, so that its models get
127.0.0.11, .12, ... whatever other models on this host hold."""
import pytest

from localjuju import addresses


@pytest.fixture(autouse=True)
def private_address_leases(tmp_path, monkeypatch):
    lease_dir = str(tmp_path / 'address-leases')
    monkeypatch.setenv('LOCALJUJU_LEASE_DIR', lease_dir)
    monkeypatch.setattr(addresses, 'LEASE_DIR', lease_dir)
