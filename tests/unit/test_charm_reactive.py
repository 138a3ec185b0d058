"""reactive/docker_registry.py handlers and the start/stop actions.

The handler module is loaded with a recording stand-in of charms.reactive: decorators keep
their conditions on the function, flags live in a set. A small dispatcher runs the handlers
the way charms.reactive does (hook handlers first, then flag handlers until nothing more
matches, each at most once per hook) so whole hooks can be checked too.
"""
import importlib.util
import inspect
import runpy
import sys
import types
from unittest import mock

import pytest

from charms.layer import registry_juju as real_registry_juju
from charms.layer import registry_status
from charms.layer.registry_status import ACTIVE, BLOCKED, WAITING, Outcome
from tests.support.registry_testlib import ROOT

HANDLERS_FILE = ROOT / 'reactive' / 'docker_registry.py'


class FakeReactive(types.ModuleType):
    def __init__(self):
        super().__init__('charms.reactive')
        self.flags = set()
        self.history = []
        self.endpoints = {}
        self.RelationBase = mock.MagicMock(name='RelationBase')
        self.changed_data = {}

    def _decorator(kind):
        def decorator_factory(self, *names):
            def decorate(func):
                func.__dict__.setdefault('conditions', []).append((kind, names))
                return func
            return decorate
        return decorator_factory

    when = _decorator('when')
    when_all = _decorator('when')
    when_not = _decorator('when_not')
    when_none = _decorator('when_not')
    when_any = _decorator('when_any')
    hook = _decorator('hook')

    def set_flag(self, flag):
        self.history.append(('set', flag))
        self.flags.add(flag)

    def clear_flag(self, flag):
        self.history.append(('clear', flag))
        self.flags.discard(flag)

    def is_flag_set(self, flag):
        return flag in self.flags

    def endpoint_from_flag(self, flag):
        return self.endpoints.setdefault(flag, mock.MagicMock(name=flag))

    def data_changed(self, key, value):
        changed = self.changed_data.get(key) != value
        self.changed_data[key] = value
        return changed


@pytest.fixture
def reactive():
    return FakeReactive()


def _fake_modules(reactive, extra=None):
    """sys.modules entries and package attributes for the fakes."""
    modules = {'charms.reactive': reactive}
    modules.update(extra or {})
    return modules


class _Installed:
    """Install fake modules in sys.modules and as attributes of their parent packages."""

    def __init__(self, modules):
        self.modules = modules
        self.patches = []

    def __enter__(self):
        self.patches.append(mock.patch.dict(sys.modules, self.modules))
        for name, module in self.modules.items():
            parent, _, attr = name.rpartition('.')
            self.patches.append(mock.patch.object(sys.modules[parent], attr, module,
                                                  create=True))
        for p in self.patches:
            p.start()
        return self

    def __exit__(self, *exc):
        for p in reversed(self.patches):
            p.stop()


@pytest.fixture
def charm(reactive):
    """The handler module with leadership, registry_juju and hookenv mocked; the statuses
    registry_status sets are recorded by state on charm.status_mock."""
    status = mock.MagicMock(name='status')
    leadership = mock.MagicMock(name='leadership')
    leadership.leader_set.side_effect = \
        lambda values: reactive.flags.update('leadership.set.' + k for k in values)
    tls_client = mock.MagicMock(name='tls_client')
    with _Installed(_fake_modules(reactive, {'charms.leadership': leadership,
                                             'charms.layer.tls_client': tls_client})):
        spec = importlib.util.spec_from_file_location('docker_registry_handlers',
                                                      HANDLERS_FILE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    unit = mock.MagicMock(name='registry_juju')
    unit.install_docker.return_value = None
    unit.ensure_image.return_value = None
    unit.configure.return_value = Outcome(ACTIVE, 'Ready at x:5000 (http)')
    unit.new_http_secret.return_value = 'f' * 64
    unit.container_status.return_value = 'running'
    unit.temporary_config_left.return_value = False
    module.registry_juju = unit
    module.registry_switch = mock.MagicMock(name='registry_switch')
    module.hookenv = mock.MagicMock(name='hookenv')
    at_exit = []
    status_hookenv = mock.MagicMock(name='registry_status.hookenv')
    status_hookenv.action_name.return_value = None
    status_hookenv.atexit.side_effect = lambda callback, *a, **kw: at_exit.append(callback)
    status_hookenv.status_set.side_effect = lambda state, message: getattr(status, state)(message)

    def end_hook():
        """What charmhelpers does when a hook succeeds: run the atexit callbacks."""
        for callback in reversed(at_exit):
            callback()
        at_exit.clear()
    module.end_hook = end_hook
    module.reactive = reactive
    module.status_mock = status
    module.leadership_mock = leadership
    module.tls_client = tls_client
    with mock.patch.object(registry_status, 'hookenv', status_hookenv), \
            mock.patch.object(registry_status, '_shown', []):
        yield module


def handlers(module):
    return [f for _, f in inspect.getmembers(module, inspect.isfunction)
            if getattr(f, 'conditions', None)]


def matches(func, flags, hook_name):
    ok = True
    for kind, names in func.conditions:
        if kind == 'when':
            ok &= all(n in flags for n in names)
        elif kind == 'when_not':
            ok &= not any(n in flags for n in names)
        elif kind == 'when_any':
            ok &= any(n in flags for n in names)
        elif kind == 'hook':
            ok &= hook_name in names
    return ok


def is_hook_handler(func):
    return any(kind == 'hook' for kind, _ in func.conditions)


def dispatch(module, hook_name):
    """Run one hook; returns the names of the handlers that ran, in order."""
    flags = module.reactive.flags
    ordered = sorted(handlers(module), key=lambda f: f.__code__.co_firstlineno)
    ran = []
    for func in ordered:
        if is_hook_handler(func) and matches(func, flags, hook_name):
            func()
            ran.append(func.__name__)
    done = set()
    progress = True
    while progress:
        progress = False
        for func in ordered:
            if is_hook_handler(func) or func.__name__ in done:
                continue
            if matches(func, flags, hook_name):
                func()
                ran.append(func.__name__)
                done.add(func.__name__)
                progress = True
                break
    module.end_hook()
    # layer:basic / layer:leadership drop their transient flags at the end of the hook
    for flag in [f for f in flags if f.startswith(('config.changed', 'leadership.changed.'))]:
        flags.discard(flag)
    return ran


# --- conditions of every handler ------------------------------------------------------------

CONDITIONS = {
    'install_docker': [('when_not', ('registry.docker.installed',))],
    'generate_http_secret': [('when_not', ('leadership.set.http-secret',)),
                             ('when', ('leadership.is_leader',))],
    'recheck_image': [('when', ('config.changed.registry-image',))],
    'upgrade_charm': [('hook', ('upgrade-charm',))],
    'get_image': [('when_not', ('registry.image.available',)),
                  ('when', ('registry.docker.installed',))],
    'reconfigure': [('when_any', ('config.changed', 'leadership.changed.http-secret'))],
    'wait_for_http_secret': [('when_not', ('leadership.is_leader',
                                           'leadership.set.http-secret'))],
    'configure_registry': [('when_not', ('registry.configured', 'registry.stopped',
                                         'registry.series-upgrade', 'registry.departing')),
                           ('when', ('registry.image.available',
                                     'leadership.set.http-secret'))],
    'check_registry': [('hook', ('update-status', 'start'))],
    'report_stopped': [('when', ('registry.stopped',))],
    'pre_series_upgrade': [('hook', ('pre-series-upgrade',))],
    'post_series_upgrade': [('hook', ('post-series-upgrade',))],
    'stop_registry': [('hook', ('stop',))],
    'request_certificate': [('when', ('certificates.available',))],
    'serve_new_certificate': [('when_any', ('tls_client.server.certificate.written',
                                            'tls_client.ca.written'))],
    'forget_relation_certificate': [('when', ('registry.tls.relation',)),
                                    ('when_not', ('certificates.available',))],
    'publish_to_clients': [('when', ('endpoint.docker-registry.joined', 'registry.configured'))],
    'proxies_changed': [('when_any', ('endpoint.website.changed',
                                      'endpoint.website.departed'))],
    'peers_changed': [('hook', ('peer-relation-joined', 'peer-relation-departed'))],
    'note_departure': [('hook', ('certificates-relation-departed', 'website-relation-departed',
                                 'docker-registry-relation-departed',
                                 'nrpe-external-master-relation-departed',
                                 'peer-relation-departed'))],
    'publish_proxy_services': [('when', ('leadership.is_leader', 'website.available',
                                         'registry.configured'))],
    'withdraw_proxy_services': [('when', ('website.available',)),
                                ('when_not', ('leadership.is_leader',))],
    'write_nrpe_checks': [('when', ('nrpe-external-master.available', 'registry.configured'))],
    'remove_nrpe_checks': [('when', ('registry.nrpe.checks',)),
                           ('when_not', ('nrpe-external-master.available',))],
}

# Flags something sets: ours (set_flag in the handlers/actions), layer:basic's and
# layer:leadership's.
KNOWN_FLAG_PREFIXES = ('registry.', 'config.changed', 'config.set.', 'config.default.',
                       'leadership.is_leader', 'leadership.set.', 'leadership.changed.',
                       'certificates.available', 'tls_client.server.certificate.written',
                       'tls_client.ca.written', 'endpoint.docker-registry.joined',
                       'endpoint.website.changed', 'endpoint.website.departed',
                       'website.available', 'nrpe-external-master.available')


def test_every_handler_has_the_expected_conditions(charm):
    found = {f.__name__: f.conditions for f in handlers(charm)}
    assert sorted(found) == sorted(CONDITIONS)
    for name, conditions in CONDITIONS.items():
        assert sorted(found[name]) == sorted(conditions), name


def test_handlers_only_react_to_flags_that_something_sets(charm):
    for func in handlers(charm):
        for kind, names in func.conditions:
            if kind == 'hook':
                continue
            for name in names:
                assert name.startswith(KNOWN_FLAG_PREFIXES), (func.__name__, name)


# --- each handler ---------------------------------------------------------------------------

def test_install_docker_sets_the_flag(charm):
    charm.install_docker()
    charm.status_mock.maintenance.assert_called_once_with('Installing docker.io')
    assert 'registry.docker.installed' in charm.reactive.flags
    charm.end_hook()
    charm.status_mock.blocked.assert_not_called()


def test_install_docker_blocks_on_failure(charm):
    charm.registry_juju.install_docker.return_value = 'Cannot install docker.io: boom'
    charm.install_docker()
    charm.end_hook()
    charm.status_mock.blocked.assert_called_once_with('Cannot install docker.io: boom')
    assert 'registry.docker.installed' not in charm.reactive.flags


def test_generate_http_secret_shares_it_through_leadership(charm):
    charm.generate_http_secret()
    charm.leadership_mock.leader_set.assert_called_once_with({'http-secret': 'f' * 64})


def test_recheck_image_clears_the_image_flag(charm):
    charm.reactive.flags.add('registry.image.available')
    charm.recheck_image()
    assert 'registry.image.available' not in charm.reactive.flags


def test_upgrade_charm_clears_image_and_configured(charm):
    charm.reactive.flags.update({'registry.image.available', 'registry.configured'})
    charm.upgrade_charm()
    assert not charm.reactive.flags & {'registry.image.available', 'registry.configured'}


def test_upgrade_charm_takes_over_from_the_old_charm_first(charm):
    # a switch from the Charmed Kubernetes charm is cleaned up before anything converges
    charm.upgrade_charm()
    charm.registry_switch.adopt.assert_called_once_with(charm.hookenv.log)


def test_get_image_sets_the_flag_and_reports_progress(charm):
    charm.get_image()
    charm.registry_juju.ensure_image.assert_called_once_with(charm.progress)
    assert 'registry.image.available' in charm.reactive.flags


def test_get_image_blocks_on_failure(charm):
    charm.registry_juju.ensure_image.return_value = 'Cannot get registry image registry:2: x'
    charm.get_image()
    charm.end_hook()
    charm.status_mock.blocked.assert_called_once_with('Cannot get registry image registry:2: x')
    assert 'registry.image.available' not in charm.reactive.flags


def test_reconfigure_clears_configured(charm):
    charm.reactive.flags.add('registry.configured')
    charm.reconfigure()
    assert 'registry.configured' not in charm.reactive.flags


def test_wait_for_http_secret_status(charm):
    charm.wait_for_http_secret()
    charm.end_hook()
    charm.status_mock.waiting.assert_called_once_with(
        'Waiting for the leader to share http.secret')


def test_configure_registry_active(charm):
    charm.configure_registry()
    charm.registry_juju.configure.assert_called_once_with(charm.progress)
    assert 'registry.configured' in charm.reactive.flags
    charm.end_hook()
    charm.status_mock.active.assert_called_once_with('Ready at x:5000 (http)')


def test_configure_registry_waiting(charm):
    charm.registry_juju.configure.return_value = Outcome(WAITING, 'w')
    charm.configure_registry()
    charm.end_hook()
    charm.status_mock.waiting.assert_called_once_with('w')
    assert 'registry.configured' not in charm.reactive.flags


def test_configure_registry_blocked(charm):
    charm.registry_juju.configure.return_value = Outcome(
        BLOCKED, 'Invalid config: log-level: must be one of error, warn, info, debug')
    charm.configure_registry()
    charm.end_hook()
    charm.status_mock.blocked.assert_called_once_with(
        'Invalid config: log-level: must be one of error, warn, info, debug')
    charm.status_mock.active.assert_not_called()
    assert 'registry.configured' not in charm.reactive.flags


def test_check_registry_leaves_a_running_registry_alone(charm):
    charm.reactive.flags.add('registry.configured')
    charm.check_registry()
    charm.registry_juju.configure.assert_not_called()
    assert 'registry.configured' in charm.reactive.flags


@pytest.mark.parametrize('departing, flagged', [('docker-registry/0', True),
                                                ('easyrsa/0', False)])
def test_a_unit_named_as_departing_is_itself_leaving(charm, departing, flagged):
    charm.hookenv.local_unit.return_value = 'docker-registry/0'
    charm.hookenv.departing_unit.return_value = departing
    charm.note_departure()
    charm.note_departure(mock.MagicMock(name='peer-discovery relation'))  # as in peer hooks
    assert ('registry.departing' in charm.reactive.flags) == flagged


def test_a_leaving_unit_keeps_serving_its_certificate_until_it_stops(charm):
    # Its certificates relation goes before its stop hook: no reconfiguration to plain HTTP.
    charm.reactive.flags.update({'registry.configured', 'registry.departing',
                                 'registry.tls.relation', 'registry.image.available',
                                 'leadership.set.http-secret'})
    charm.forget_relation_certificate()
    charm.serve_new_certificate()
    charm.check_registry()
    charm.registry_juju.configure.assert_not_called()


@pytest.mark.parametrize('flag', ['registry.stopped', 'registry.series-upgrade',
                                  'registry.departing'])
def test_check_registry_respects_a_deliberate_stop(charm, flag):
    charm.reactive.flags.update({'registry.configured', flag})
    charm.registry_juju.container_status.return_value = 'exited'
    charm.check_registry()
    charm.registry_juju.configure.assert_not_called()
    assert 'registry.configured' in charm.reactive.flags


def test_check_registry_does_nothing_before_configuration(charm):
    charm.registry_juju.container_status.return_value = 'removed'
    charm.check_registry()
    charm.registry_juju.configure.assert_not_called()


@pytest.mark.parametrize('state', ['exited', 'removed'])
def test_check_registry_recreates_a_dead_registry(charm, state):
    charm.reactive.flags.add('registry.configured')
    charm.registry_juju.container_status.return_value = state
    charm.check_registry()
    assert ('clear', 'registry.configured') in charm.reactive.history
    charm.registry_juju.configure.assert_called_once()
    assert 'registry.configured' in charm.reactive.flags
    charm.end_hook()
    message = charm.status_mock.active.call_args.args[0]
    assert message.startswith('Ready at x:5000 (http)') and state in message
    charm.hookenv.log.assert_called_once()


def test_check_registry_restores_what_an_interrupted_garbage_collect_left_read_only(charm):
    # A garbage-collect killed while it restored the configuration: the container runs,
    # read-only, and the status would stay Ready.
    charm.reactive.flags.add('registry.configured')
    charm.registry_juju.temporary_config_left.return_value = True
    charm.check_registry()
    charm.registry_juju.configure.assert_called_once_with(charm.progress)
    assert 'registry.configured' in charm.reactive.flags
    charm.end_hook()
    assert 'interrupted garbage-collect' in charm.status_mock.active.call_args.args[0]


def test_report_stopped(charm):
    charm.report_stopped()
    charm.end_hook()
    charm.status_mock.blocked.assert_called_once_with(
        'Registry stopped by the stop action; run the start action')


def test_pre_series_upgrade(charm):
    charm.reactive.flags.add('registry.configured')
    charm.pre_series_upgrade()
    charm.registry_juju.stop.assert_called_once_with()
    assert 'registry.series-upgrade' in charm.reactive.flags
    assert 'registry.configured' not in charm.reactive.flags
    charm.end_hook()
    charm.status_mock.blocked.assert_called_once_with('Series upgrade in progress')


def test_post_series_upgrade(charm):
    charm.reactive.flags.add('registry.series-upgrade')
    charm.post_series_upgrade()
    assert 'registry.series-upgrade' not in charm.reactive.flags


def test_stop_hook_stops_without_removing(charm):
    charm.stop_registry()
    charm.registry_juju.stop.assert_called_once_with()
    assert charm.registry_juju.mock_calls == [mock.call.stop()]


# --- whole hooks ----------------------------------------------------------------------------

def test_install_on_the_leader_ends_configured(charm):
    charm.reactive.flags.add('leadership.is_leader')
    ran = dispatch(charm, 'install')
    assert ran == ['install_docker', 'generate_http_secret', 'get_image', 'configure_registry']
    assert {'registry.docker.installed', 'registry.image.available',
            'registry.configured'} <= charm.reactive.flags


def test_non_leader_waits_for_the_secret(charm):
    ran = dispatch(charm, 'install')
    assert 'configure_registry' not in ran and 'wait_for_http_secret' in ran
    charm.end_hook()
    charm.status_mock.waiting.assert_called_once()


def configured(charm):
    charm.reactive.flags.update({'leadership.is_leader', 'leadership.set.http-secret',
                                 'registry.docker.installed', 'registry.image.available',
                                 'registry.configured'})


def test_quiet_hook_does_nothing(charm):
    configured(charm)
    assert dispatch(charm, 'update-status') == ['check_registry']
    charm.registry_juju.configure.assert_not_called()


def test_config_change_reconfigures(charm):
    configured(charm)
    charm.reactive.flags.update({'config.changed', 'config.changed.log-level'})
    ran = dispatch(charm, 'config-changed')
    assert ran == ['reconfigure', 'configure_registry']
    assert 'registry.configured' in charm.reactive.flags


def test_image_change_rechecks_the_image_then_reconfigures(charm):
    configured(charm)
    charm.reactive.flags.update({'config.changed', 'config.changed.registry-image'})
    ran = dispatch(charm, 'config-changed')
    assert ran.index('recheck_image') < ran.index('get_image') < ran.index('configure_registry')


def test_new_http_secret_reconfigures(charm):
    configured(charm)
    charm.reactive.flags.add('leadership.changed.http-secret')
    assert 'configure_registry' in dispatch(charm, 'leader-settings-changed')


def test_upgrade_charm_reconverges(charm):
    configured(charm)
    ran = dispatch(charm, 'upgrade-charm')
    assert 'get_image' in ran and 'configure_registry' in ran


def test_stopped_registry_is_not_reconfigured(charm):
    configured(charm)
    charm.reactive.flags.update({'registry.stopped', 'config.changed'})
    charm.reactive.flags.discard('registry.configured')
    ran = dispatch(charm, 'config-changed')
    assert 'configure_registry' not in ran and 'report_stopped' in ran


def test_series_upgrade_round_trip(charm):
    configured(charm)
    dispatch(charm, 'pre-series-upgrade')
    charm.registry_juju.configure.assert_not_called()
    assert 'registry.series-upgrade' in charm.reactive.flags
    ran = dispatch(charm, 'post-series-upgrade')
    assert ran[0] == 'post_series_upgrade' and 'configure_registry' in ran
    assert 'registry.configured' in charm.reactive.flags


# --- actions --------------------------------------------------------------------------------

@pytest.fixture
def action(reactive):
    """Run actions/<name> with hookenv, unitdata and registry_juju mocked."""
    from charmhelpers.core import hookenv, unitdata
    kv = mock.MagicMock(name='kv')
    with _Installed(_fake_modules(reactive)), \
            mock.patch.multiple(hookenv, action_fail=mock.DEFAULT, action_set=mock.DEFAULT,
                                status_set=mock.DEFAULT, action_name=mock.DEFAULT) as h, \
            mock.patch.object(unitdata, 'kv', return_value=kv), \
            mock.patch.object(real_registry_juju, 'configure') as configure, \
            mock.patch.object(real_registry_juju, 'stop') as stop:
        configure.return_value = Outcome(ACTIVE, 'Ready at x (http)')

        def run(name):
            h['action_name'].return_value = name
            runpy.run_path(str(ROOT / 'actions' / name), run_name='__main__')

        run.hookenv, run.kv, run.flags = h, kv, reactive.flags
        run.configure, run.stop = configure, stop
        yield run


def test_start_action_configures_and_clears_stopped(action):
    action.flags.add('registry.stopped')
    action('start')
    assert 'registry.stopped' not in action.flags
    assert 'registry.configured' in action.flags
    action.hookenv['status_set'].assert_any_call('active', 'Ready at x (http)')
    action.hookenv['action_set'].assert_called_once_with({'result': 'Ready at x (http)'})
    action.hookenv['action_fail'].assert_not_called()
    action.kv.flush.assert_called_once_with()


def test_start_action_reports_progress_as_maintenance(action):
    action.configure.side_effect = lambda report: (
        report('Configuring the registry'),
        Outcome(ACTIVE, 'ok'))[1]
    action('start')
    action.hookenv['status_set'].assert_any_call('maintenance', 'Configuring the registry')


def test_start_action_fails_when_configure_fails(action):
    action.flags.add('registry.stopped')
    action.configure.return_value = Outcome(BLOCKED, 'Invalid config: x')
    action('start')
    action.hookenv['status_set'].assert_called_once_with('blocked', 'Invalid config: x')
    action.hookenv['action_fail'].assert_called_once_with(
        'Registry not started: Invalid config: x')
    assert 'registry.configured' not in action.flags


def test_start_action_waiting_outcome(action):
    action.configure.return_value = Outcome(WAITING, 'later')
    action('start')
    action.hookenv['status_set'].assert_called_once_with('waiting', 'later')


def test_start_action_refuses_during_series_upgrade(action):
    action.flags.update({'registry.series-upgrade', 'registry.stopped'})
    action('start')
    action.configure.assert_not_called()
    action.hookenv['action_fail'].assert_called_once()
    assert 'registry.stopped' in action.flags


def test_stop_action(action):
    action.flags.add('registry.configured')
    action('stop')
    action.stop.assert_called_once_with()
    assert 'registry.stopped' in action.flags
    assert 'registry.configured' not in action.flags
    action.hookenv['status_set'].assert_called_once_with(
        'blocked', 'Registry stopped by the stop action; run the start action')
    action.hookenv['action_set'].assert_called_once_with(
        {'result': 'Registry stopped; image data kept'})
    action.kv.flush.assert_called_once_with()


def test_stop_action_failure(action):
    from charms.layer.registry_container import DockerError
    action.flags.add('registry.configured')
    action.stop.side_effect = DockerError('daemon gone')
    action('stop')
    action.hookenv['action_fail'].assert_called_once_with(
        'Cannot stop the registry: daemon gone')
    assert 'registry.stopped' not in action.flags
    assert 'registry.configured' in action.flags
    action.kv.flush.assert_called_once_with()


# --- certificates relation ------------------------------------------------------------------

def test_a_changed_certificate_request_is_sent(charm):
    charm.registry_juju.certificate_request.return_value = ('192.0.2.10', ['192.0.2.10'])
    charm.request_certificate()
    charm.tls_client.request_server_cert.assert_called_once_with('192.0.2.10', ['192.0.2.10'])
    assert 'registry.tls.relation' in charm.reactive.flags


def test_an_unchanged_certificate_request_is_not_sent_again(charm):
    charm.registry_juju.certificate_request.return_value = None
    charm.request_certificate()
    charm.tls_client.request_server_cert.assert_not_called()


def test_a_written_certificate_reconfigures_the_registry(charm):
    charm.reactive.flags.update({'registry.configured', 'tls_client.server.certificate.written',
                                 'registry.image.available', 'leadership.set.http-secret'})
    ran = dispatch(charm, 'certificates-relation-changed')
    assert 'serve_new_certificate' in ran
    charm.registry_juju.configure.assert_called_once()  # converged once, by either handler
    assert 'tls_client.server.certificate.written' not in charm.reactive.flags


def test_a_removed_relation_forgets_its_certificate_and_reconfigures(charm):
    charm.reactive.flags.update({'registry.configured', 'registry.tls.relation',
                                 'registry.image.available', 'leadership.set.http-secret'})
    ran = dispatch(charm, 'certificates-relation-broken')
    charm.registry_juju.forget_relation_certificate.assert_called_once_with()
    assert ran.index('forget_relation_certificate') < ran.index('configure_registry')
    assert 'registry.tls.relation' not in charm.reactive.flags


# --- clients, proxies, nrpe -------------------------------------------------------------------

PAYLOAD = {'registry_netloc': '192.0.2.10:5000', 'registry_url': 'http://192.0.2.10:5000',
           'basic_user': None, 'basic_password': None, 'tls_ca': None}


def test_clients_are_told_the_payload_when_it_or_the_relations_change(charm):
    charm.registry_juju.client_payload.return_value = PAYLOAD
    charm.reactive.flags.update({'registry.configured', 'endpoint.docker-registry.joined',
                                 'registry.image.available', 'leadership.set.http-secret'})
    endpoint = charm.reactive.endpoint_from_flag('endpoint.docker-registry.joined')
    endpoint.relations = [mock.Mock(relation_id='docker-registry:1')]
    assert 'publish_to_clients' in dispatch(charm, 'update-status')
    endpoint.set_registry_config.assert_called_once_with(**PAYLOAD)
    dispatch(charm, 'update-status')
    endpoint.set_registry_config.assert_called_once()  # nothing changed: not sent again
    endpoint.relations.append(mock.Mock(relation_id='docker-registry:2'))
    dispatch(charm, 'update-status')
    assert endpoint.set_registry_config.call_count == 2  # a new relation is told
    charm.registry_juju.client_payload.return_value = dict(PAYLOAD, basic_user='u')
    dispatch(charm, 'update-status')
    assert endpoint.set_registry_config.call_args == mock.call(**dict(PAYLOAD, basic_user='u'))


def test_a_proxy_joining_or_leaving_reconfigures(charm):
    charm.reactive.flags.update({'registry.configured', 'endpoint.website.departed'})
    charm.proxies_changed()
    assert not {'registry.configured', 'endpoint.website.departed'} & charm.reactive.flags


def test_only_the_leader_describes_the_proxy_service(charm):
    charm.registry_juju.proxy_services.return_value = '- service_name: docker-registry\n'
    charm.reactive.flags.update({'registry.configured', 'website.available',
                                 'leadership.is_leader'})
    charm.publish_proxy_services()
    website = charm.reactive.endpoints['website.available']
    website.set_remote.assert_called_once_with(services='- service_name: docker-registry\n')
    charm.reactive.flags.discard('leadership.is_leader')
    website.reset_mock()
    ran = dispatch(charm, 'leader-settings-changed')
    assert 'publish_proxy_services' not in ran
    website.set_remote.assert_called_once_with(services=None)
    dispatch(charm, 'update-status')
    website.set_remote.assert_called_once()  # withdrawn once, not in every hook
    charm.reactive.flags.add('leadership.is_leader')  # leading again: described again
    charm.publish_proxy_services()
    website.set_remote.assert_called_with(services='- service_name: docker-registry\n')


def test_the_proxy_service_is_described_again_only_when_it_changes(charm):
    charm.registry_juju.proxy_services.return_value = '- service_name: docker-registry\n'
    charm.hookenv.relation_ids.return_value = ['website:3']
    charm.reactive.flags.update({'registry.configured', 'website.available',
                                 'leadership.is_leader'})
    charm.publish_proxy_services()
    charm.publish_proxy_services()
    website = charm.reactive.endpoints['website.available']
    website.set_remote.assert_called_once()
    charm.registry_juju.proxy_services.return_value = '- service_name: other\n'
    charm.publish_proxy_services()
    website.set_remote.assert_called_with(services='- service_name: other\n')


def test_nrpe_checks_are_written_once_per_change_and_removed_with_the_relation(charm):
    from charms.layer.registry_relations import NrpeCheck
    charm.hookenv.config.return_value = {'nagios_context': 'juju', 'nagios_servicegroups': ''}
    check = NrpeCheck('docker_registry_http', 'API', ['/usr/lib/nagios/plugins/check_http'])
    charm.registry_juju.nrpe_checks.return_value = [check]
    charm.reactive.flags.update({'registry.configured', 'nrpe-external-master.available'})
    charm.write_nrpe_checks()
    nrpe = charm.reactive.endpoints['nrpe-external-master.available']
    nrpe.add_check.assert_called_once_with(check.args, name=check.name,
                                           description='API', context='juju',
                                           servicegroups='juju')
    charm.write_nrpe_checks()  # unchanged: nothing rewritten
    assert nrpe.add_check.call_count == 1
    charm.reactive.flags.discard('nrpe-external-master.available')
    charm.remove_nrpe_checks()
    charm.reactive.RelationBase.from_name.assert_called_once_with('nrpe-external-master')
    charm.reactive.RelationBase.from_name.return_value.removed.assert_called_once_with()
    assert 'registry.nrpe.checks' not in charm.reactive.flags


def test_a_certificate_written_after_configure_ran_in_the_same_hook_is_served_at_once(charm):
    # tls-required was waiting for this certificate; configure_registry ran earlier in the
    # hook and clearing an unset flag would not wake it again.
    charm.reactive.flags.update({'registry.image.available', 'leadership.set.http-secret',
                                 'tls_client.server.certificate.written'})
    charm.serve_new_certificate()
    charm.registry_juju.configure.assert_called_once()
    assert 'registry.configured' in charm.reactive.flags


def test_a_written_certificate_waits_while_the_registry_is_stopped(charm):
    charm.reactive.flags.update({'registry.image.available', 'leadership.set.http-secret',
                                 'registry.stopped', 'tls_client.ca.written'})
    charm.serve_new_certificate()
    charm.registry_juju.configure.assert_not_called()


def test_the_last_status_of_a_hook_is_the_one_shown(charm):
    # layer:status alone would keep the earlier, more severe "waiting".
    charm.registry_juju.configure.side_effect = [
        Outcome(WAITING, 'Waiting for a certificate'),
        Outcome(ACTIVE, 'Ready at x:5000 (https)')]
    charm.reactive.flags.update({'registry.image.available', 'leadership.set.http-secret'})
    charm.configure_registry()
    charm.serve_new_certificate()
    charm.end_hook()
    charm.status_mock.waiting.assert_not_called()
    charm.status_mock.active.assert_called_once_with('Ready at x:5000 (https)')


def test_an_image_removed_behind_the_charms_back_is_fetched_again(charm):
    # "Image disappeared" recovered only by hand: registry.image.available stayed set.
    charm.reactive.flags.update({'registry.image.available', 'leadership.set.http-secret'})
    charm.registry_juju.image_present.return_value = False
    charm.configure_registry()
    assert 'registry.image.available' not in charm.reactive.flags
    charm.registry_juju.configure.assert_not_called()
    charm.registry_juju.image_present.return_value = True
    charm.get_image()
    assert 'registry.image.available' in charm.reactive.flags
    charm.configure_registry()
    assert 'registry.configured' in charm.reactive.flags


def test_a_huge_status_message_is_cut(charm):
    charm.registry_juju.configure.return_value = Outcome(
        BLOCKED, 'x' * 100000)
    charm.configure_registry()
    charm.end_hook()
    [(message,), _] = charm.status_mock.blocked.call_args
    assert len(message) == registry_status.MAX_MESSAGE and message.endswith('...')
