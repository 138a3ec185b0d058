"""Config-side findings of issue 12 on a real unit: hostile values block with a message
naming the option (no traceback, the registry keeps serving its images), and what the unit
exposes is bounded (debug server address, container logs, status text).

One deployment serves the module; every test leaves it active and serving the seed image.
"""
import json
import socket

import pytest

from tests.support.clients import http_get, pulled_digest
from tests.support.deployment import APP

pytestmark = pytest.mark.functional

UNIT = APP + '/0'


def workload(d):
    s = d.unit_status(UNIT)
    return s['current'], s['message']


def hooks_ok(d, mark):
    runs = d.model.hooks_run(UNIT)[mark:]
    assert all(rc == 0 for _, rc in runs), runs
    assert 'Traceback' not in d.model.log(UNIT)


@pytest.fixture(scope='module')
def reg(seeded_deploy, upstream_registry):
    d = seeded_deploy(upstream_registry, 'hard')
    yield d
    d.model.destroy()


@pytest.fixture
def registry(reg):
    assert workload(reg) == ('active', reg.ready), reg.model.status_history(UNIT)[-6:]
    yield reg
    assert workload(reg)[0] == 'active', reg.model.status_history(UNIT)[-6:]
    assert pulled_digest(reg.seed_ref) == reg.seed_digest


@pytest.mark.parametrize('values,option', [
    ({'http-host': 'http://[::1'}, 'http-host'),
    ({'cache-remoteurl': 'http://[::1'}, 'cache-remoteurl'),
    ({'registry-http-proxy': 'http://[::1'}, 'registry-http-proxy'),
    ({'auth-basic-user': 'ad\tmin', 'auth-basic-password': 'pw'}, 'auth-basic-user'),
    ({'auth-basic-user': 'u' * 300, 'auth-basic-password': 'pw'}, 'auth-basic-user'),
    ({'tls-expiry-warning-days': 1000000000}, 'tls-expiry-warning-days'),
    ({'auth-basic-password': 'p' * 100000}, 'auth-basic-password'),
    ({'auth-basic-password': 'p' * 73}, 'auth-basic-password'),
    ({'http-host': 'https://' + 'h' * 100000 + '/'}, 'http-host'),
], ids=['http-host-ipv6', 'cache-remoteurl-ipv6', 'proxy-ipv6', 'user-tab', 'user-300',
        'expiry-days', 'password-100k', 'password-73', 'http-host-100k'])
def test_hostile_values_block_without_a_traceback_and_recover(registry, values, option):
    d = registry
    mark = len(d.model.hooks_run(UNIT))
    before = d.container_id()
    d.model.config(APP, values)
    try:
        state, message = workload(d)
        assert state == 'blocked' and option in message, (state, message[:300])
        assert len(message) < 600, len(message)
        d.model.update_status()
        assert workload(d) == (state, message)
        assert d.container_id() == before
        assert pulled_digest(d.seed_ref) == d.seed_digest
    finally:
        d.model.config(APP, reset=list(values))
    # Not stuck in maintenance once the value is gone.
    assert workload(d) == ('active', d.ready), d.model.status_history(UNIT)[-6:]
    hooks_ok(d, mark)


def test_a_whitespace_password_is_no_password(registry):
    d = registry
    d.model.config(APP, {'auth-basic-password': '   '})
    try:
        assert workload(d) == ('active', d.ready)
        assert http_get('http://{}/v2/'.format(d.netloc))[0] == 200
        assert d.on_machine(UNIT, 'test', '-e', '/etc/docker/registry/htpasswd',
                            check=False).returncode != 0
    finally:
        d.model.config(APP, reset=['auth-basic-password'])


def test_another_workloads_container_is_left_alone(registry):
    d = registry
    d.docker(UNIT, 'run', '--detach', '--name', 'foreign', '--network', 'none',
             'registry:2')
    try:
        foreign = d.docker(UNIT, 'inspect', '--format', '{{.Id}} {{.State.StartedAt}}',
                           'foreign')
        d.model.config(APP, {'registry-name': 'foreign'})
        try:
            state, message = workload(d)
            assert state == 'blocked', (state, message)
            assert 'foreign' in message and 'registry-name' in message, message
            assert d.docker(UNIT, 'inspect', '--format', '{{.Id}} {{.State.StartedAt}}',
                            'foreign') == foreign
            assert json.loads(d.docker(UNIT, 'inspect', '--format', '{{json .State.Running}}',
                                       'foreign'))
            assert pulled_digest(d.seed_ref) == d.seed_digest
        finally:
            d.model.config(APP, reset=['registry-name'])
        assert workload(d) == ('active', d.ready)
        assert d.docker(UNIT, 'inspect', '--format', '{{.Id}} {{.State.StartedAt}}',
                        'foreign') == foreign
    finally:
        d.docker(UNIT, 'rm', '--force', 'foreign', check=False)


def test_an_image_removed_behind_the_charm_is_fetched_again(registry):
    d = registry
    d.docker(UNIT, 'rmi', '--force', 'registry:2')
    mark = len(d.model.hooks_run(UNIT))
    d.model.config(APP, {'log-level': 'debug'})  # any change that reconfigures
    try:
        assert workload(d) == ('active', d.ready), d.model.status_history(UNIT)[-6:]
        history = d.model.status_history(UNIT)
        assert ('maintenance', 'Loading registry image from the registry-image resource') in \
            history[-6:], history[-6:]
    finally:
        d.model.config(APP, reset=['log-level'])
    hooks_ok(d, mark)


def test_cache_token_never_in_the_status(registry, upstream_registry):
    d = registry
    url = '{}/?token=SeCrEtToKeN'.format(upstream_registry.url.rstrip('/'))
    d.model.config(APP, {'cache-remoteurl': url})
    try:
        state, message = workload(d)
        if state == 'active':
            assert 'pull-through cache of ' + upstream_registry.url.rstrip('/') in message
        else:  # the registry may refuse the query; its error line is redacted then
            assert message.startswith('Registry refused') and 'cache-remoteurl' in message
        assert 'SeCrEtToKeN' not in json.dumps(d.model.status_history(UNIT))
    finally:
        d.model.config(APP, reset=['cache-remoteurl'])


def test_unreachable_s3_endpoint_is_not_plain_ready(registry):
    d = registry
    # Static keys: without them the AWS SDK would ask the EC2 metadata address.
    values = {'storage-s3-bucket': 'images', 'storage-s3-region': 'us-east-1',
              'storage-s3-regionendpoint': 'http://127.0.0.1:1',
              'storage-s3-accesskey': 'AKIAHARDTEST', 'storage-s3-secretkey': 'hard-secret'}
    d.model.config(APP, values)
    try:
        state, message = workload(d)
        assert 'storage-s3-regionendpoint http://127.0.0.1:1 unreachable' in message, \
            (state, message)
    finally:
        d.model.config(APP, reset=list(values))


def test_debug_server_only_on_the_unit_address_and_logs_bounded(registry):
    d = registry
    d.model.config(APP, {'prometheus-metrics': True})
    try:
        assert workload(d)[0] == 'active'
        status, body = http_get('http://{}:{}/metrics'.format(d.address(), d.debug_port))
        assert status == 200 and b'registry' in body
        # Not on any other address of the machine (127.0.0.1 is not the unit's address).
        with pytest.raises(OSError):
            socket.create_connection(('127.0.0.1', d.debug_port), timeout=2).close()
        log_config = json.loads(d.docker(UNIT, 'inspect', '--format',
                                         '{{json .HostConfig.LogConfig}}', 'registry'))
        assert log_config == {'Type': 'json-file',
                              'Config': {'max-file': '5', 'max-size': '10m'}}, log_config
    finally:
        d.model.config(APP, reset=['prometheus-metrics'])
