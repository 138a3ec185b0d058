"""Suite-wide rule: a skipped test is a failure.

Every test here must run on the CI machine (scripts/bootstrap.sh installs everything), so a
skip can only mean a missing dependency or a broken fixture, never a pass.
"""
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, 'wasxfail'):
        report.outcome = 'failed'
        report.longrepr = 'skipped tests count as failures here: {}'.format(report.longrepr)
