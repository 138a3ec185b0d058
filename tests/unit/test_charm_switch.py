"""Taking over from the Charmed Kubernetes docker-registry charm (registry_switch)."""
import json
import os
from unittest import mock

from charms.layer import registry_switch as sw
from charms.layer import registry_paths

CONFIG = {'registry-port': 5000, 'http-host': '', 'tls-cert-blob': '',
          'tls-cert-path': '/etc/docker/registry/registry.crt',
          'tls-key-path': '/etc/docker/registry/registry.key',
          'tls-ca-path': '/etc/docker/registry/ca.crt'}
OLD_FLAGS = {'charm.docker-registry.configured', 'docker.ready', 'docker.available',
             'apt.installed.apache2-utils', 'cert-provider.available',
             'endpoint.cert-provider.joined', 'leadership.is_leader',
             'endpoint.docker-registry.joined', 'registry.configured'}


def leftovers(**changes):
    base = dict(flags=set(OLD_FLAGS), kv_keys=['docker_volumes', 'reactive.data_changed.basic_auth',
                                               'reactive.data_changed.registry.nrpe'],
                config=dict(CONFIG), certs_d={}, daemon=None, netlocs=['198.51.100.7:5000'])
    base.update(changes)
    return sw.Leftovers(**base)


def test_a_unit_that_never_ran_the_old_charm_is_left_alone():
    left = leftovers(flags={'registry.configured', 'docker.ready'}, kv_keys=['x'],
                     daemon={'insecure-registries': ['198.51.100.7:5000']})
    assert sw.plan(left, 'docker-registry') == sw.Plan([], [], [], [], None)


def test_old_flags_and_keys_go_ours_and_shared_layers_stay():
    steps = sw.plan(leftovers(), 'docker-registry')
    assert steps.flags == sorted({'charm.docker-registry.configured', 'docker.ready',
                                  'docker.available', 'apt.installed.apache2-utils',
                                  'cert-provider.available', 'endpoint.cert-provider.joined'})
    assert steps.kv_keys == ['docker_volumes', 'reactive.data_changed.basic_auth']


def test_old_token_bundle_and_trusted_ca_go_but_not_the_tls_files_it_already_removed():
    steps = sw.plan(leftovers(), 'my-registry')
    assert steps.files == ['/etc/docker/registry/auth_token.pem',
                           '/usr/local/share/ca-certificates/juju-my-registry.crt']


def test_relation_certificate_files_left_with_tls_on_are_removed():
    # they would otherwise be served as the operator's tls-*-path files
    steps = sw.plan(leftovers(flags=OLD_FLAGS | {sw.OLD_TLS_FLAG}), 'docker-registry')
    assert set(sw.old_tls_paths(CONFIG)) <= set(steps.files)
    # with blobs the old charm wrote the blobs there, and blobs win anyway
    config = dict(CONFIG, **{'tls-cert-blob': 'eA=='})
    steps = sw.plan(leftovers(flags=OLD_FLAGS | {sw.OLD_TLS_FLAG}, config=config), 'x')
    assert not set(sw.old_tls_paths(CONFIG)) & set(steps.files)


def test_certs_d_symlinks_to_its_files_go_with_their_directory_when_emptied():
    certs_d = {
        '/etc/docker/certs.d/198.51.100.7:5000': {
            'client.cert': '/etc/docker/registry/registry.crt',
            'client.key': '/etc/docker/registry/registry.key'},
        '/etc/docker/certs.d/other:443': {
            'client.cert': '/etc/docker/registry/registry.crt', 'ca.crt': None},
        '/etc/docker/certs.d/mine:5000': {'client.cert': '/root/me.crt'},
    }
    steps = sw.plan(leftovers(certs_d=certs_d), 'docker-registry')
    assert '/etc/docker/certs.d/198.51.100.7:5000/client.cert' in steps.files
    assert '/etc/docker/certs.d/198.51.100.7:5000/client.key' in steps.files
    assert '/etc/docker/certs.d/other:443/client.cert' in steps.files
    assert steps.dirs == ['/etc/docker/certs.d/198.51.100.7:5000']
    assert not any(path.startswith('/etc/docker/certs.d/mine') for path in steps.files)


def test_only_our_insecure_registry_entries_leave_daemon_json():
    daemon = {'insecure-registries': ['198.51.100.7:5000'], 'log-driver': 'json-file'}
    assert sw.plan(leftovers(daemon=daemon), 'x').daemon == {'log-driver': 'json-file'}
    daemon = {'insecure-registries': ['198.51.100.7:5000', 'mirror:80']}
    assert sw.plan(leftovers(daemon=daemon), 'x').daemon == {
        'insecure-registries': ['mirror:80']}
    assert sw.plan(leftovers(daemon={'insecure-registries': ['mirror:80']}), 'x').daemon is None


def test_old_netlocs_follow_the_old_charms_get_netloc():
    assert sw.old_netlocs(dict(CONFIG, **{'http-host': 'https://reg.example:8443'}),
                          ['198.51.100.7', None]) == ['198.51.100.7:5000', 'reg.example:8443']


def test_adopt_acts_on_the_unit(tmp_path, monkeypatch):
    certs_d = tmp_path / 'certs.d'
    (certs_d / '198.51.100.7:5000').mkdir(parents=True)
    os.symlink(CONFIG['tls-cert-path'], str(certs_d / '198.51.100.7:5000' / 'client.cert'))
    daemon = tmp_path / 'daemon.json'
    daemon.write_text(json.dumps({'insecure-registries': ['198.51.100.7:5000']}))
    monkeypatch.setattr(registry_paths, 'DOCKER_CERTS_D', str(certs_d))
    monkeypatch.setattr(registry_paths, 'DOCKER_DAEMON_JSON', str(daemon))
    monkeypatch.setattr(registry_paths, 'LOCAL_CA_DIR', str(tmp_path / 'ca'))
    monkeypatch.setattr(registry_paths, 'OLD_TOKEN_CERTS', str(tmp_path / 'auth_token.pem'))
    kv = mock.MagicMock()
    kv.getrange.return_value = {'docker_volumes': {}, 'other': 1}
    cleared, log = [], mock.MagicMock()
    with mock.patch.object(sw.hookenv, 'config', return_value=CONFIG), \
            mock.patch.object(sw.hookenv, 'unit_private_ip', return_value='198.51.100.7'), \
            mock.patch.object(sw.hookenv, 'application_name', return_value='dr'), \
            mock.patch.object(sw.unitdata, 'kv', return_value=kv), \
            mock.patch.object(sw, 'get_flags', return_value=sorted(OLD_FLAGS)), \
            mock.patch.object(sw, 'clear_flag', side_effect=cleared.append), \
            mock.patch.object(sw.hookenv, 'local_unit', return_value='dr/0'), \
            mock.patch('charms.layer.registry_container.take_over',
                       return_value=True) as take_over:
        done = sw.adopt(log)
    take_over.assert_called_once_with('registry', 'dr/0')   # its container: ours to replace
    assert 'its container (replaced by ours at the next converge)' in done
    assert not (certs_d / '198.51.100.7:5000').exists()
    assert json.loads(daemon.read_text()) == {}
    assert 'charm.docker-registry.configured' in cleared and 'registry.configured' not in cleared
    kv.unset.assert_called_once_with('docker_volumes')
    assert str(daemon) + ' (insecure-registries)' in done
    assert 'Took over' in log.call_args[0][0]
