"""registry_juju: the hook-environment side (image, configure, addresses, ports)."""
import datetime
import subprocess
import sys
from unittest import mock

import pytest

from charms.layer.registry_status import ACTIVE, BLOCKED, Outcome
from charms.layer import registry_container, registry_files, registry_tls, registry_juju
from charms.layer import registry_paths
from tests.support.registry_testlib import IMAGE_CMD, IMAGE_ID, UNIT_ADDRESS, defaults, with_options


# --- ensure_image ---------------------------------------------------------------------------

def test_local_image_is_used_without_resource_or_pull(hookenv, fake_docker):
    fake_docker.images['registry:2'] = (IMAGE_ID, IMAGE_CMD)
    report = mock.Mock()
    assert registry_juju.ensure_image(report) is None
    report.assert_called_once_with('Checking for registry image registry:2')
    hookenv['resource_get'].assert_not_called()
    assert 'pull' not in fake_docker.verbs() and 'load' not in fake_docker.verbs()


def test_resource_is_loaded_before_any_pull(hookenv, fake_docker, tmp_path):
    archive = tmp_path / 'registry-image.tar'
    archive.write_bytes(b'tar')
    hookenv['resource_get'].return_value = str(archive)
    fake_docker.on_load = lambda d: d.images.update({'registry:2': (IMAGE_ID, IMAGE_CMD)})
    report = mock.Mock()
    assert registry_juju.ensure_image(report) is None
    hookenv['resource_get'].assert_called_once_with('registry-image')
    assert [c.args[0] for c in report.call_args_list] == [
        'Checking for registry image registry:2',
        'Loading registry image from the registry-image resource']
    assert fake_docker.verbs() == ['image inspect', 'load', 'image inspect']


def test_pull_when_no_resource(hookenv, fake_docker):
    fake_docker.on_pull = lambda d, ref: d.images.update({ref: (IMAGE_ID, IMAGE_CMD)})
    report = mock.Mock()
    assert registry_juju.ensure_image(report) is None
    assert report.call_args_list[-1] == mock.call('Pulling registry image registry:2')
    assert fake_docker.verbs() == ['image inspect', 'pull', 'image inspect']
    assert ('pull', '--', 'registry:2') in fake_docker.calls


@pytest.mark.parametrize('image', ['--help', 'registry:2; rm -rf /', 'REGISTRY:2'])
def test_an_invalid_registry_image_is_a_problem_before_docker_sees_it(hookenv, fake_docker,
                                                                     image):
    hookenv['config'].return_value = dict(hookenv['config'].return_value,
                                          **{'registry-image': image})
    problem = registry_juju.ensure_image(mock.Mock())
    assert problem == 'Invalid config: registry-image: is not a valid image reference'
    assert fake_docker.calls == []


def test_resource_get_raising_falls_back_to_pull(hookenv, fake_docker):
    hookenv['resource_get'].side_effect = subprocess.CalledProcessError(1, 'resource-get')
    fake_docker.on_pull = lambda d, ref: d.images.update({ref: (IMAGE_ID, IMAGE_CMD)})
    assert registry_juju.ensure_image(mock.Mock()) is None


def test_resource_without_the_image_then_pull_fails(hookenv, fake_docker, tmp_path):
    archive = tmp_path / 'registry-image.tar'
    archive.write_bytes(b'tar')
    hookenv['resource_get'].return_value = str(archive)
    fake_docker.fail['pull'] = ('Error response from daemon:\n'
                                'Get "https://registry-1.docker.io/v2/": dial tcp: lookup')
    problem = registry_juju.ensure_image(mock.Mock())
    assert problem == ('Cannot get registry image registry:2: the registry-image resource '
                       'does not contain registry:2; pull failed: Get '
                       '"https://registry-1.docker.io/v2/": dial tcp: lookup')
    assert fake_docker.verbs().index('load') < fake_docker.verbs().index('pull')


def test_unreadable_resource_and_failed_pull(hookenv, fake_docker, tmp_path):
    hookenv['resource_get'].return_value = str(tmp_path / 'missing.tar')
    fake_docker.fail['pull'] = 'no route'
    problem = registry_juju.ensure_image(mock.Mock())
    assert problem.startswith('Cannot get registry image registry:2: loading the resource '
                              'failed: ')
    assert problem.endswith('; pull failed: no route')


def test_failure_message_names_the_configured_image(hookenv, fake_docker):
    hookenv['config'].return_value = with_options({'registry-image': 'mirror/registry:2.8'})
    fake_docker.fail['pull'] = 'x' * 300
    problem = registry_juju.ensure_image(mock.Mock())
    assert problem.startswith('Cannot get registry image mirror/registry:2.8: pull failed: ')
    assert len(problem) < 250  # docker's message is cut


# --- configure ------------------------------------------------------------------------------

def test_configure_blocks_on_invalid_config_without_touching_docker(hookenv, fake_docker):
    hookenv['config'].return_value = with_options({'log-level': 'loud'})
    fake_docker.images['registry:2'] = (IMAGE_ID, IMAGE_CMD)
    report = mock.Mock()
    with mock.patch.object(registry_files, 'converge') as converge:
        outcome = registry_juju.configure(report)
    assert outcome == Outcome(
        BLOCKED, 'Invalid config: log-level: must be one of error, warn, info, debug')
    converge.assert_not_called()
    report.assert_not_called()
    # Only looked at the image (which registry major version validation applies to).
    assert fake_docker.verbs() == ['ps', 'image inspect']


@pytest.fixture
def converging(hookenv, fake_docker, tmp_path):
    fake_docker.images['registry:2'] = (IMAGE_ID, IMAGE_CMD)
    with mock.patch.object(registry_files, 'converge', return_value='started') as converge, \
            mock.patch.object(registry_files, 'ready', return_value=True) as ready, \
            mock.patch.object(registry_files, 'read_file', return_value=None), \
            mock.patch.object(registry_paths, 'TEMPORARY_MARKER',
                              str(tmp_path / 'state' / 'temporary-config')):
        yield {'converge': converge, 'ready': ready, 'hookenv': hookenv}


def test_temporary_overrides_are_marked_until_the_configuration_serves_again(converging,
                                                                             tmp_path):
    from charms.layer import action_support
    lock = str(tmp_path / 'lock')
    with mock.patch.object(action_support.lock_held, '__defaults__', (lock,)), \
            mock.patch.object(action_support.Lock.__init__, '__defaults__', (lock,)):
        outcome = registry_juju.configure(mock.Mock(), overrides={'storage-read-only': True})
        assert outcome.state == ACTIVE
        assert converging['converge'].call_args.args[0]['storage-read-only'] is True
        with action_support.Lock('garbage-collect'):
            assert not registry_juju.temporary_config_left()  # the action restores it
        # The action was killed before it restored the configuration.
        assert registry_juju.temporary_config_left()
        converging['ready'].return_value = False
        assert registry_juju.configure(mock.Mock()).state != ACTIVE
        assert registry_juju.temporary_config_left()  # not restored yet: keep trying
        converging['ready'].return_value = True
        assert registry_juju.configure(mock.Mock()).state == ACTIVE
        assert not registry_juju.temporary_config_left()


def test_configure_converges_and_reports_ready(converging):
    report = mock.Mock()
    outcome = registry_juju.configure(report)
    assert outcome == Outcome(ACTIVE, 'Ready at {}:5000 (http)'
                                            .format(UNIT_ADDRESS))
    report.assert_called_once_with('Configuring the registry')
    args = converging['converge'].call_args.args
    assert args[0] == defaults()
    assert args[1].http_secret == 'secret' and args[1].listen_host == ''
    assert args[3] == 'docker-registry/0'
    assert args[4] == (IMAGE_ID, IMAGE_CMD)
    assert args[5] == [UNIT_ADDRESS, '192.0.2.9']
    assert args[6] == '/charm/templates'
    converging['ready'].assert_called_once_with('http://127.0.0.1:5000', 'registry', None,
                                                None)
    converging['hookenv']['open_port'].assert_called_once_with(5000, 'TCP')


def test_configure_probes_the_unit_address_when_listening_on_it(converging):
    converging['hookenv']['config'].return_value = with_options(
        {'listen-on-unit-address': True})
    registry_juju.configure(mock.Mock())
    converging['ready'].assert_called_once_with('http://{}:5000'.format(UNIT_ADDRESS),
                                                'registry', None, None)


def test_configure_when_the_image_disappeared(converging, fake_docker):
    fake_docker.images.clear()
    outcome = registry_juju.configure(mock.Mock())
    assert outcome == Outcome(
        BLOCKED, 'Registry image registry:2 disappeared from the engine')
    converging['converge'].assert_not_called()


def test_configure_reports_docker_errors(converging):
    converging['converge'].side_effect = registry_container.DockerError('port is taken')
    outcome = registry_juju.configure(mock.Mock())
    assert outcome == Outcome(
        BLOCKED, 'Cannot run the registry container: port is taken')


def test_configure_when_the_registry_does_not_answer(converging):
    converging['ready'].return_value = False
    with mock.patch.object(registry_juju, 'container_status', return_value='restarting'):
        outcome = registry_juju.configure(mock.Mock())
    assert outcome == Outcome(
        BLOCKED, 'Registry container restarting but does not answer /v2/')


def test_configure_reports_https_with_http_host(converging):
    from tests.support.registry_testlib import CERT_PEM, KEY_PEM, b64
    converging['hookenv']['config'].return_value = with_options({
        'tls-cert-blob': b64(CERT_PEM), 'tls-key-blob': b64(KEY_PEM),
        'http-host': 'https://registry.example.com/'})
    valid = registry_tls.CertInfo(datetime.datetime(2099, 1, 1), [])
    with mock.patch.object(registry_tls, 'inspect', return_value=valid):
        outcome = registry_juju.configure(mock.Mock())
    assert outcome.message == 'Ready at registry.example.com:443 (https)'
    # Without a CA the probe does not verify the certificate.
    converging['ready'].assert_called_once_with('https://127.0.0.1:5000', 'registry', None,
                                                None)


# --- addresses and ports --------------------------------------------------------------------

@pytest.mark.parametrize('http_host,netloc', [
    ('', UNIT_ADDRESS + ':5000'),
    ('https://registry.example.com/', 'registry.example.com:443'),
    ('http://registry.example.com/', 'registry.example.com:80'),
    ('https://registry.example.com:8443/v/', 'registry.example.com:8443'),
])
def test_client_netloc(hookenv, http_host, netloc):
    assert registry_juju.client_netloc(with_options({'http-host': http_host})) == netloc


def test_unit_address_falls_back_to_private_address(hookenv):
    hookenv['network_get'].side_effect = NotImplementedError
    assert registry_juju.unit_address() == '192.0.2.9'
    hookenv['network_get'].side_effect = None
    hookenv['network_get'].return_value = {}
    assert registry_juju.unit_address() == '192.0.2.9'


def test_sync_ports_opens_the_registry_port(hookenv):
    registry_juju.sync_ports(defaults())
    hookenv['open_port'].assert_called_once_with(5000, 'TCP')
    hookenv['close_port'].assert_not_called()


def test_sync_ports_closes_stale_and_opens_metrics(hookenv):
    hookenv['opened_ports'].return_value = ['5000/TCP', '6000/tcp']
    registry_juju.sync_ports(with_options({'prometheus-metrics': True, 'debug-port': 5001}))
    hookenv['close_port'].assert_called_once_with(6000, 'TCP')
    hookenv['open_port'].assert_called_once_with(5001, 'TCP')


def test_sync_ports_nothing_to_do(hookenv):
    hookenv['opened_ports'].return_value = ['5000/tcp']
    registry_juju.sync_ports(defaults())
    hookenv['open_port'].assert_not_called()
    hookenv['close_port'].assert_not_called()


# --- the rest -------------------------------------------------------------------------------

def test_container_status_and_stop_use_the_configured_name(hookenv, fake_docker):
    hookenv['config'].return_value = with_options({'registry-name': 'reg'})
    fake_docker.add_container('registry', True)  # another name: not ours
    assert registry_juju.container_status() == 'removed'
    fake_docker.add_container('reg', True, {registry_container.UNIT_LABEL: 'docker-registry/0'})
    assert registry_juju.container_status() == 'running'
    registry_juju.stop()
    assert ('stop', '--time', '10', 'reg') in fake_docker.calls
    assert registry_juju.container_status() == 'exited'


def test_new_http_secret_is_random_hex():
    a, b = registry_juju.new_http_secret(), registry_juju.new_http_secret()
    assert a != b and len(a) == 64 and int(a, 16) >= 0


@pytest.fixture
def fetch():
    module = mock.MagicMock(name='charmhelpers.fetch')
    with mock.patch.dict(sys.modules, {'charmhelpers.fetch': module}):
        yield module


def test_install_docker(fetch, fake_docker):
    assert registry_juju.install_docker() is None
    fetch.apt_install.assert_called_once_with(['docker.io'], fatal=True)
    assert fake_docker.calls == [('info',)]


def test_install_docker_updates_package_lists_once_on_failure(fetch, fake_docker):
    fetch.apt_install.side_effect = [subprocess.CalledProcessError(100, 'apt-get'), None]
    assert registry_juju.install_docker() is None
    fetch.apt_update.assert_called_once_with(fatal=True)
    assert fetch.apt_install.call_count == 2


def test_install_docker_failure(fetch, fake_docker):
    fetch.apt_install.side_effect = subprocess.CalledProcessError(100, 'apt-get')
    assert registry_juju.install_docker().startswith('Cannot install docker.io: ')


def test_install_docker_engine_not_answering(fetch, fake_docker):
    fake_docker.fail['info'] = 'Cannot connect to the Docker daemon'
    assert registry_juju.install_docker() == \
        'Docker engine not answering: Cannot connect to the Docker daemon'
