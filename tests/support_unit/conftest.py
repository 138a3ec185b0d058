"""Tests of the test-support helpers themselves (tests/support)."""

from tests.support.fixtures import *  # noqa: F401,F403
