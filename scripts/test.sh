#!/bin/bash
# Runs every test: unit tests of the charm library and handlers, the runner's and the test
# support's own tests, and the functional tests that deploy the charm through the local
# runner against a real Docker engine, real registries and real clients.
# Installs and starts what they need first (scripts/bootstrap.sh). Extra arguments go to
# pytest, e.g. scripts/test.sh tests/unit -k htpasswd
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash scripts/bootstrap.sh
bash scripts/build-registry-image.sh registry:2 >/dev/null
venv=${LOCALJUJU_VENV:-/opt/docker-registry-venv}
"$venv/bin/python" -m flake8   # .flake8: the line length the code uses
# The charm under test, built first with charm-tools and the upstream layers (reused while
# its inputs are unchanged; see tests/support/charm_build.py), and beside it the existing
# charm the switch test starts from: on a fresh machine that build would otherwise hold up
# one test worker for minutes.
"$venv/bin/python" -m tests.support.charm_build --existing >/dev/null &
existing_build=$!
"$venv/bin/python" -m tests.support.charm_build
wait "$existing_build"
# Two workers (TEST_WORKERS), a module each at a time, slowest modules first (tests/conftest.py):
# the functional tests spend half their time waiting on hooks and daemons. --durations: the
# slowest tests, to keep the whole run under 30 minutes.
exec "$venv/bin/python" -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder \
    -ra --durations=15 "${@:-tests}"
