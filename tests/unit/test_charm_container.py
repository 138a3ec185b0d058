"""The container spec's fingerprint, apply_spec's docker calls, docker() itself, converge."""
import os
import stat
import subprocess
from unittest import mock

import pytest

from charms.layer import registry_container, registry_files
from charms.layer import registry_paths
from charms.layer.registry_container import (FINGERPRINT_LABEL, DockerError,
                                             apply_spec, container_spec)
from tests.support.registry_testlib import (IMAGE_CMD, IMAGE_ID, TEMPLATES, UNIT, UNIT_ADDRESS,
                                            defaults, with_options)

MOUNTS = [('/etc/docker/registry/config.yml', '/etc/docker/registry/config.yml', True)]
ENV = '/etc/docker/registry/registry.env'
FILES = {'/etc/docker/registry/config.yml': b'version: 0.1\n', ENV: b''}


def spec(config=None, image_id=IMAGE_ID, mounts=MOUNTS, files=FILES, unit=UNIT):
    return container_spec(config or defaults(), unit, image_id, IMAGE_CMD, mounts, ENV, files)


# --- fingerprint ----------------------------------------------------------------------------

def test_identical_inputs_identical_fingerprint():
    assert spec().fingerprint == spec().fingerprint
    assert spec().args == spec().args


def test_fingerprint_is_a_label_on_the_container():
    s = spec()
    assert '{}={}'.format(FINGERPRINT_LABEL, s.fingerprint) in s.args
    assert len(s.fingerprint) == 64


def test_unrelated_option_keeps_the_fingerprint():
    assert spec(with_options({'nagios_context': 'other'})).fingerprint == spec().fingerprint


def test_mounted_file_content_changes_the_fingerprint():
    changed = dict(FILES, **{'/etc/docker/registry/config.yml': b'version: 0.2\n'})
    assert spec(files=changed).fingerprint != spec().fingerprint


def test_env_file_content_changes_the_fingerprint():
    changed = dict(FILES, **{ENV: b'HTTP_PROXY=http://p:3128\n'})
    assert spec(files=changed).fingerprint != spec().fingerprint


def test_an_added_file_changes_the_fingerprint():
    changed = dict(FILES, **{'/etc/docker/registry/htpasswd': b'admin:$2b$...\n'})
    assert spec(files=changed).fingerprint != spec().fingerprint


def test_file_order_does_not_matter():
    reordered = dict(reversed(list(FILES.items())))
    assert spec(files=reordered).fingerprint == spec().fingerprint


def test_image_id_changes_the_fingerprint():
    assert spec(image_id='sha256:' + 'b' * 64).fingerprint != spec().fingerprint


@pytest.mark.parametrize('option,value', [('registry-port', 5050), ('debug-port', 5002)])
def test_published_port_changes_the_fingerprint(option, value):
    bridge = {'container-network': 'bridge', 'prometheus-metrics': True}
    assert spec(with_options(bridge, **{option: value})).fingerprint != \
        spec(with_options(bridge)).fingerprint


def test_mounts_change_the_fingerprint():
    more = MOUNTS + [('/srv/registry', '/var/lib/registry', False)]
    assert spec(mounts=more).fingerprint != spec().fingerprint


def test_unit_label_is_in_the_args():
    assert 'io.juju.docker-registry.unit=' + UNIT in spec().args


def test_no_secret_on_the_command_line():
    config = with_options({'auth-basic-password': 'hunter2', 'cache-remoteurl': 'https://u.x',
                           'cache-username': 'u', 'cache-password': 'cachepw',
                           'registry-http-proxy': 'http://user:proxypw@proxy:3128'})
    from tests.support.registry_testlib import run
    args = ' '.join(run(config).args)
    for secret in ('hunter2', 'cachepw', 'proxypw', 'shared-http-secret'):
        assert secret not in args


def test_config_path_for_distribution_3():
    assert registry_container.config_path_for(
        ['serve', '/etc/distribution/config.yml']) == '/etc/distribution/config.yml'
    assert registry_container.config_path_for(None) == '/etc/docker/registry/config.yml'


# --- apply_spec -----------------------------------------------------------------------------

def staged(s):
    args = list(s.args)
    args[args.index('--name') + 1] = s.name + '-next'
    return tuple(['create'] + args)


OURS = {registry_container.UNIT_LABEL: UNIT}


def proven(name):
    return True


def never(name):
    return False


def apply(s, proves_itself=proven, restore_files=lambda: None):
    return apply_spec(s, proves_itself, restore_files)


def test_apply_starts_a_new_container_when_absent(fake_docker):
    s = spec()
    assert apply(s) == 'started'
    assert fake_docker.mutating_calls() == [staged(s), ('rename', 'registry-next', 'registry'),
                                            ('start', 'registry')]
    assert fake_docker.containers['registry']['running']
    assert fake_docker.containers['registry']['labels'][FINGERPRINT_LABEL] == s.fingerprint


def test_apply_leaves_a_matching_running_container_alone(fake_docker):
    s = spec()
    fake_docker.add_container('registry', True, dict(OURS, **{FINGERPRINT_LABEL: s.fingerprint}))
    assert apply(s) == 'unchanged'
    assert fake_docker.mutating_calls() == []


def test_apply_starts_a_matching_stopped_container(fake_docker):
    s = spec()
    fake_docker.add_container('registry', False, dict(OURS, **{FINGERPRINT_LABEL: s.fingerprint}))
    assert apply(s) == 'started'
    assert fake_docker.mutating_calls() == [('start', 'registry')]


def test_apply_recreates_on_a_different_fingerprint(fake_docker):
    s = spec()
    fake_docker.add_container('registry', True, dict(OURS, **{FINGERPRINT_LABEL: 'old'}))
    proofs = []

    def proves_itself(name):
        # the old container is stopped and kept aside while the new one proves itself
        proofs.append((name, fake_docker.containers['registry-previous']['running']))
        return True
    assert apply(s, proves_itself) == 'recreated'
    calls = fake_docker.mutating_calls()
    assert calls == [staged(s), ('stop', '--time', '10', 'registry'),
                     ('rename', 'registry', 'registry-previous'),
                     ('rename', 'registry-next', 'registry'), ('start', 'registry'),
                     ('rm', 'registry-previous')]
    assert proofs == [('registry', False)]
    assert fake_docker.containers['registry']['labels'][FINGERPRINT_LABEL] == s.fingerprint
    assert fake_docker.containers['registry']['running']
    assert set(fake_docker.containers) == {'registry'}


def test_a_refused_container_gives_way_to_the_previous_one_with_its_files(fake_docker):
    s = spec()
    fake_docker.add_container('registry', True, dict(OURS, **{FINGERPRINT_LABEL: 'old'}))
    fake_docker.logs['registry'] = 'panic: invalid region provided: nowhere-1\n'
    order = []

    def restore_files():
        # the files go back before the old container starts again, so it reads its own
        order.append(('restore', fake_docker.containers['registry-previous']['running']))
    with pytest.raises(registry_container.Rejected) as rejected:
        apply(s, never, restore_files)
    assert 'invalid region provided' in rejected.value.logs
    assert rejected.value.previous_serves
    assert order == [('restore', False)]
    assert set(fake_docker.containers) == {'registry'}
    assert fake_docker.containers['registry']['labels'][FINGERPRINT_LABEL] == 'old'
    assert fake_docker.containers['registry']['running']
    assert fake_docker.mutating_calls()[-3:] == [
        ('rm', '--force', 'registry'), ('rename', 'registry-previous', 'registry'),
        ('start', 'registry')]


def test_a_refused_first_container_is_removed(fake_docker):
    with pytest.raises(registry_container.Rejected) as rejected:
        apply(spec(), never)
    assert not rejected.value.previous_serves
    assert fake_docker.containers == {}


def test_apply_recreates_a_stopped_container_with_an_old_fingerprint(fake_docker):
    fake_docker.add_container('registry', False, dict(OURS, **{FINGERPRINT_LABEL: 'old'}))
    assert apply(spec()) == 'recreated'
    assert fake_docker.containers['registry']['running']


def test_apply_recreates_our_container_without_a_fingerprint(fake_docker):
    fake_docker.add_container('registry', True, OURS)
    assert apply(spec()) == 'recreated'


@pytest.mark.parametrize('labels', [{}, {registry_container.UNIT_LABEL: 'other-app/0'}])
def test_another_workloads_container_is_never_touched(fake_docker, labels):
    # registry-name set to the name of a container the charm did not create
    fake_docker.add_container('registry', True, labels)
    with pytest.raises(registry_container.NotOurs, match='registry-name'):
        apply(spec())
    registry_container.stop('registry', UNIT)
    assert fake_docker.mutating_calls() == []
    assert fake_docker.containers['registry']['running']


def test_a_taken_over_container_is_replaced_like_ours(fake_docker, tmp_path, monkeypatch):
    # After a switch, the old charm's container (no label of ours) is this unit's to replace.
    monkeypatch.setattr(registry_paths, 'TAKEN_OVER', str(tmp_path / 'taken-over.json'))
    fake_docker.add_container('registry', True, {})
    with pytest.raises(registry_container.NotOurs):
        apply(spec())
    assert registry_container.take_over('registry', UNIT)
    assert registry_container.container_state('registry')['unit'] == UNIT
    assert apply(spec()) == 'recreated'
    assert fake_docker.containers['registry']['labels'][registry_container.UNIT_LABEL] == UNIT
    # Never ours by name alone: another container of that name later is not.
    assert not registry_container.take_over('registry', UNIT)   # labelled ours already
    fake_docker.containers['registry'] = dict(fake_docker.containers['registry'],
                                              labels={}, id='someone-else')
    assert registry_container.container_state('registry')['unit'] is None


def test_apply_removes_leftover_staging_and_previous_containers(fake_docker):
    s = spec()
    fake_docker.add_container('registry', True, dict(OURS, **{FINGERPRINT_LABEL: 'old'}))
    fake_docker.add_container('registry-next', False, dict(OURS, **{FINGERPRINT_LABEL: 'x'}))
    fake_docker.add_container('registry-previous', False, dict(OURS, **{FINGERPRINT_LABEL: 'y'}))
    assert apply(s) == 'recreated'
    calls = fake_docker.mutating_calls()
    assert calls[:2] == [('rm', '--force', 'registry-next'), ('rm', '--force', 'registry-previous')]
    assert calls[2] == staged(s)
    assert fake_docker.containers['registry']['labels'][FINGERPRINT_LABEL] == s.fingerprint


def test_apply_never_removes_volumes_nor_touches_the_daemon(fake_docker):
    fake_docker.add_container('registry', True, dict(OURS, **{FINGERPRINT_LABEL: 'old'}))
    fake_docker.add_container('registry-next', True, OURS)
    apply(spec())
    apply(spec(image_id='sha256:' + 'c' * 64))
    with pytest.raises(registry_container.Rejected):
        apply(spec(image_id='sha256:' + 'd' * 64), never)
    registry_container.stop('registry', UNIT)
    for call in fake_docker.calls:
        if call[0] == 'rm':
            assert not {'-v', '--volumes'} & set(call), call
        assert call[0] not in ('system', 'volume', 'restart', 'kill'), call
        assert call[:2] not in (('container', 'prune'), ('image', 'rm'), ('rmi',)), call


def test_apply_failed_create_keeps_the_old_container_running(fake_docker):
    fake_docker.add_container('registry', True, dict(OURS, **{FINGERPRINT_LABEL: 'old'}))
    fake_docker.fail['create'] = 'invalid reference format'
    with pytest.raises(DockerError):
        apply(spec())
    assert fake_docker.containers['registry']['running']
    assert ('stop', '--time', '10', 'registry') not in fake_docker.calls


def test_stop_only_when_present(fake_docker):
    registry_container.stop('registry', UNIT)
    assert fake_docker.mutating_calls() == []
    fake_docker.add_container('registry', True, OURS)
    registry_container.stop('registry', UNIT)
    assert fake_docker.mutating_calls() == [('stop', '--time', '10', 'registry')]


def test_container_state(fake_docker):
    assert registry_container.container_state('registry') is None
    fake_docker.add_container('registry', False, {FINGERPRINT_LABEL: 'f'})
    assert registry_container.container_state('registry') == {
        'running': False, 'status': 'exited', 'fingerprint': 'f', 'unit': None,
        'started': '2026-11-28T00:00:01Z'}


def test_image_info(fake_docker):
    assert registry_container.image_info('registry:2') is None
    fake_docker.images['registry:2'] = (IMAGE_ID, IMAGE_CMD)
    assert registry_container.image_info('registry:2') == (IMAGE_ID, IMAGE_CMD)


# --- docker() -------------------------------------------------------------------------------

def test_docker_runs_the_cli_without_a_shell():
    done = subprocess.CompletedProcess([], 0, stdout='out', stderr='')
    with mock.patch('subprocess.run', return_value=done) as run:
        assert registry_container.docker('ps', '-a', timeout=5) == 'out'
    args, kwargs = run.call_args
    assert args[0] == ('docker', 'ps', '-a')
    assert kwargs['timeout'] == 5 and not kwargs.get('shell')


def test_docker_error_carries_stderr():
    failed = subprocess.CompletedProcess([], 1, stdout='', stderr='  boom\n')
    with mock.patch('subprocess.run', return_value=failed):
        with pytest.raises(DockerError, match='^boom$'):
            registry_container.docker('start', 'x')


def test_docker_error_without_stderr():
    failed = subprocess.CompletedProcess([], 1, stdout='', stderr='')
    with mock.patch('subprocess.run', return_value=failed):
        with pytest.raises(DockerError, match='docker start failed'):
            registry_container.docker('start', 'x')


def test_docker_missing_cli():
    with mock.patch('subprocess.run', side_effect=FileNotFoundError):
        with pytest.raises(DockerError, match='not installed'):
            registry_container.docker('info')


def test_docker_timeout():
    with mock.patch('subprocess.run', side_effect=subprocess.TimeoutExpired('docker', 3)):
        with pytest.raises(DockerError, match='docker pull timed out after 3s'):
            registry_container.docker('pull', 'x', timeout=3)


def test_wait_until():
    assert registry_container.wait_until(lambda: True, 0)
    assert not registry_container.wait_until(lambda: False, 0.05, interval=0.01)


# --- converge (files under tmp_path) --------------------------------------------------------

def facts():
    from charms.layer.registry_config import Facts
    return Facts('', 'secret', None, False)


def do_converge(config, proves_itself=proven):
    return registry_files.converge(config, facts(), None, UNIT, (IMAGE_ID, IMAGE_CMD),
                                     [UNIT_ADDRESS], TEMPLATES, proves_itself)


def test_converge_writes_private_files_and_starts(fake_docker, host_dirs):
    assert do_converge(with_options({'auth-basic-password': 'pw'})) == 'started'
    for key in ('HOST_CONFIG', 'HOST_ENV', 'HOST_HTPASSWD'):
        mode = stat.S_IMODE(os.stat(host_dirs[key]).st_mode)
        assert mode == 0o600, key
    assert os.path.isdir(host_dirs['HOST_DATA'])
    # a second run with the same config changes nothing: the htpasswd entry is kept
    assert do_converge(with_options({'auth-basic-password': 'pw'})) == 'unchanged'


def test_converge_recreates_on_change_and_drops_stale_auth_files(fake_docker, host_dirs):
    do_converge(with_options({'auth-basic-password': 'pw'}))
    assert os.path.exists(host_dirs['HOST_HTPASSWD'])
    assert do_converge(defaults()) == 'recreated'
    assert not os.path.exists(host_dirs['HOST_HTPASSWD'])


def test_write_file_is_atomic_and_idempotent(tmp_path):
    path = str(tmp_path / 'sub' / 'f')
    assert registry_files.write_file(path, b'x', 0o600)
    assert not registry_files.write_file(path, b'x', 0o600)
    assert registry_files.write_file(path, b'x', 0o644)  # mode change rewrites
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert os.listdir(tmp_path / 'sub') == ['f']
    assert registry_files.read_file(str(tmp_path / 'missing')) is None


def test_renaming_the_container_retires_the_old_one(fake_docker, host_dirs):
    # Regression: after registry-name changes, converge creates the new container but leaves
    # the old one (same unit label) running; with --network host the new one cannot bind the
    # port and the old one keeps serving the previous configuration.
    do_converge(defaults())
    assert fake_docker.containers['registry']['running']
    do_converge(with_options({'registry-name': 'registry-two'}))
    assert fake_docker.containers['registry-two']['running']
    old = fake_docker.containers.get('registry')
    assert old is None or not old['running'], 'old container still running'


def test_container_state_when_docker_reports_an_error_with_spaces(fake_docker):
    # Regression: `{{json .State}} {{json .Config.Labels}}` is split at the first space, but
    # State.Error holds docker's message after a failed start ("driver failed programming
    # external connectivity ..."), so json.loads raises and the hook crashes
    # (lib/charms/layer/registry_container.py container_state).
    fake_docker.add_container('registry', False, {FINGERPRINT_LABEL: 'f'},
                              error='driver failed programming external connectivity')
    assert registry_container.container_state('registry') == {
        'running': False, 'status': 'exited', 'fingerprint': 'f', 'unit': None,
        'started': '2026-11-28T00:00:01Z'}


def test_container_state_with_label_values_containing_spaces(fake_docker):
    fake_docker.add_container('registry', True, {FINGERPRINT_LABEL: 'f', 'note': 'a b c'})
    assert registry_container.container_state('registry')['fingerprint'] == 'f'


def test_a_crash_looping_container_does_not_count_as_running(fake_docker):
    # docker reports Running=true between restart attempts; such a registry serves nothing.
    fake_docker.add_container('registry', True, {FINGERPRINT_LABEL: 'f'})
    fake_docker.containers['registry']['restarting'] = True
    assert registry_container.container_state('registry') == {
        'running': False, 'status': 'restarting', 'fingerprint': 'f', 'unit': None,
        'started': '2026-11-28T00:00:01Z'}


def test_a_container_docker_cannot_start_gives_way_to_the_previous_one(fake_docker):
    # In bridge mode a taken port fails `docker start` itself.
    fake_docker.add_container('registry', True, dict(OURS, **{FINGERPRINT_LABEL: 'old'}))
    fake_docker.fail['start'] = 'driver failed programming external connectivity'

    def restore_files():
        del fake_docker.fail['start']
    with pytest.raises(registry_container.Rejected) as rejected:
        apply(spec(), proven, restore_files)
    assert rejected.value.logs == 'driver failed programming external connectivity'
    assert set(fake_docker.containers) == {'registry'}
    assert fake_docker.containers['registry']['labels'][FINGERPRINT_LABEL] == 'old'
    assert fake_docker.containers['registry']['running']


def test_a_container_kept_by_a_hook_that_died_is_the_one_to_replace(fake_docker):
    # Killed while the new container was proving itself: only registry-previous is left.
    fake_docker.add_container('registry-previous', False, dict(OURS, **{FINGERPRINT_LABEL: 'old'}))
    with pytest.raises(registry_container.Rejected):
        apply(spec(), never)
    assert set(fake_docker.containers) == {'registry'}
    assert fake_docker.containers['registry']['labels'][FINGERPRINT_LABEL] == 'old'
    assert fake_docker.containers['registry']['running']
