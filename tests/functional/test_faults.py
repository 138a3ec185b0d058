"""The fault suite (issue 12): what happens to a unit's registry when things fail under it.

One deployment serves the module: a seeded unit plus a second image. For each fault, a
client pulls again every 0.5 s until a full pull (manifest and every blob, digests checked
by skopeo) succeeds; that must happen within RECOVERY_SECONDS of the fault (or of the hook
that Juju runs after it: update-status for a removed container, start after a reboot).
Afterwards the unit is active, no hook failed, no traceback was logged, and the same images
are served with the same digests.

Faults tested elsewhere, with the same retry bound: a unit removed behind haproxy during
50 concurrent pulls (test_relations), pushes while the certificate rotates (test_tls); and
values the registry refuses (test_transactions).
"""
import os
import signal
import tempfile
import time

import pytest

from tests.support.clients import pulled_digest, skopeo
from tests.support.deployment import APP

pytestmark = pytest.mark.functional

UNIT = APP + '/0'
RECOVERY_SECONDS = 10
CONFIG_DIR = '/etc/docker/registry'


def workload(d):
    s = d.unit_status(UNIT)
    return s['current'], s['message']


def pull_ok(ref):
    with tempfile.TemporaryDirectory() as out:
        return skopeo('copy', '--src-tls-verify=false', 'docker://' + ref, 'dir:' + out,
                      check=False).returncode == 0


def seconds_until_pulled(ref, since, limit=60):
    """Pull ref every 0.5 s until a pull succeeds; seconds from `since` (monotonic) to
    that success, or None after limit seconds."""
    while time.monotonic() - since < limit:
        if pull_ok(ref):
            return time.monotonic() - since
        time.sleep(0.5)
    return None


@pytest.fixture(scope='module')
def reg(seeded_deploy, upstream_registry):
    d = seeded_deploy(upstream_registry, 'faults')
    d.second_ref = '{}/faults/second:1.0'.format(d.netloc)
    skopeo('copy', '--src-tls-verify=false', '--dest-tls-verify=false',
           'docker://' + upstream_registry.ref('test/app-a:1.0'), 'docker://' + d.second_ref)
    d.second_digest = pulled_digest(d.second_ref)
    d.catalog = d.listing()
    yield d
    d.model.destroy()


@pytest.fixture
def unit(reg):
    """Ready before; after the fault: Ready, no failed hook, no traceback, same images."""
    d = reg
    state, message = workload(d)
    assert state == 'active' and message.startswith(d.ready), (state, message)
    hooks_mark, log_mark = len(d.model.hooks_run(UNIT)), len(d.model.log(UNIT))
    yield d
    state, message = workload(d)
    assert state == 'active' and message.startswith(d.ready), d.model.status_history(UNIT)[-6:]
    runs = d.model.hooks_run(UNIT)[hooks_mark:]
    assert all(rc == 0 for _, rc in runs), runs
    assert 'Traceback' not in d.model.log(UNIT)[log_mark:]
    assert pulled_digest(d.seed_ref) == d.seed_digest
    assert pulled_digest(d.second_ref) == d.second_digest
    assert d.listing() == d.catalog


def registry_pid(d):
    return int(d.docker(UNIT, 'inspect', '--format', '{{.State.Pid}}', 'registry').strip())


def test_the_registry_process_killed(unit):
    # A crash (OOM killer, a bug): the engine restarts the container by its restart policy,
    # no hook needed.
    d = unit
    before = registry_pid(d)
    os.kill(before, signal.SIGKILL)
    recovered = seconds_until_pulled(d.seed_ref, time.monotonic())
    print('\nregistry killed: pulled again after {} s'.format(recovered))
    assert recovered is not None and recovered <= RECOVERY_SECONDS, recovered
    assert registry_pid(d) != before


@pytest.mark.parametrize('docker_args, left', [(('kill', 'registry'), 'exited'),
                                              (('rm', '-f', 'registry'), 'removed')],
                         ids=['killed', 'removed'])
def test_the_container_stopped_or_removed_behind_the_charm(unit, docker_args, left):
    # docker kill / docker rm: the engine does not bring it back; update-status does.
    d = unit
    d.docker(UNIT, *docker_args)
    assert not pull_ok(d.seed_ref)
    started = time.monotonic()
    d.model.update_status()
    recovered = seconds_until_pulled(d.seed_ref, started)
    print('\ncontainer {}: pulled again {} s after update-status began'.format(left, recovered))
    assert recovered is not None and recovered <= RECOVERY_SECONDS, recovered
    assert 'restarted the registry container, which was ' + left in workload(d)[1]


def test_dockerd_restarted(unit):
    # An engine upgrade or restart: the container comes back with it, no hook needed.
    d = unit
    started = time.monotonic()
    d.on_machine(UNIT, 'service', 'docker', 'restart')
    recovered = seconds_until_pulled(d.seed_ref, started)
    print('\ndockerd restarted: pulled again after {} s'.format(recovered))
    assert recovered is not None and recovered <= RECOVERY_SECONDS, recovered
    d.model.update_status()


def test_the_machine_rebooted(unit):
    d = unit
    machine = d.model.status()['applications'][APP]['units'][UNIT]['machine']
    started = time.monotonic()
    d.model.reboot_machine(machine)
    recovered = seconds_until_pulled(d.seed_ref, started)
    print('\nmachine rebooted: pulled again {} s after the reboot began'.format(recovered))
    assert recovered is not None and recovered <= RECOVERY_SECONDS, recovered
    assert d.model.hooks_run(UNIT)[-1] == ('start', 0)


def test_a_full_disk_while_the_configuration_is_written(unit):
    # The configuration folder fills up (a tiny tmpfs over it, holding the files the running
    # registry uses): a change blocks, naming the cause, and the last good configuration
    # keeps serving; once there is room again the change goes through.
    d = unit
    fill = 'cp -a {dir}/. /tmp/registry-config-copy/ && ' \
        'mount -t tmpfs -o size=256k tmpfs {dir} && cp -a /tmp/registry-config-copy/. {dir}/ ' \
        '&& (dd if=/dev/zero of={dir}/filler bs=4k 2>/dev/null || true)'.format(dir=CONFIG_DIR)
    d.on_machine(UNIT, 'sh', '-ec', 'mkdir -p /tmp/registry-config-copy && ' + fill)
    container = d.container_id()
    try:
        d.model.config(APP, {'log-level': 'debug'})
        state, message = workload(d)
        assert state == 'blocked', (state, message)
        assert 'Cannot write the registry configuration' in message, message
        assert 'No space left on device' in message, message
        assert d.container_id() == container
        assert pull_ok(d.seed_ref)
        d.on_machine(UNIT, 'rm', '-f', CONFIG_DIR + '/filler')
        # The next hook (update-status, any other) converges again.
        d.model.update_status()
        assert workload(d)[0] == 'active', d.model.status_history(UNIT)[-6:]
    finally:
        d.model.config(APP, reset=['log-level'])
        d.on_machine(UNIT, 'sh', '-c', 'cp -a {dir}/. /tmp/registry-config-copy/ && '
                     'umount -l {dir} && cp -a /tmp/registry-config-copy/. {dir}/ && '
                     'rm -f {dir}/filler; rm -rf /tmp/registry-config-copy'.format(
                         dir=CONFIG_DIR), check=False)
    d.model.hook(UNIT, 'config-changed')
    assert pull_ok(d.seed_ref)
