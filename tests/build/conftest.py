from tests.support.fixtures import charm_path  # noqa: F401  (the build under test)
