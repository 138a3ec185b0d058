import pytest

from tests.support.charm_build import built_charm


@pytest.fixture(scope='session')
def charm_path():
    """The built charm (charm-tools with the upstream layers), current with the sources."""
    return built_charm()
