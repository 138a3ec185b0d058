"""Core lifecycle of the docker-registry charm, through the local runner on a real engine.

One module-scoped deployment (defaults, image from the registry-image resource) serves the
lifecycle tests; every test leaves it active and serving, and asserts only its own story.
The air-gap variants (preloaded image, no image at all) get their own short-lived models.

Real clients only: skopeo pushes from the upstream stand-in registry, the host docker CLI
pulls (127.0.0.0/8 registries are insecure by default for docker), curl-like checks use
urllib. Secrets never reach a command line: skopeo gets an authfile, docker login reads
stdin.
"""
import base64
import http.server
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.support.clients import http_get, pulled_digest, skopeo
from tests.support.deployment import APP, free_port_pair, port_free

pytestmark = pytest.mark.functional

UNIT = APP + '/0'
PASSWORD = 'p@ss: #\'"{}[]&x'
NO_TLS = ('--src-tls-verify=false', '--dest-tls-verify=false')


# --- helpers ---------------------------------------------------------------------------------

def workload(d, unit=UNIT):
    s = d.unit_status(unit)
    return s['current'], s['message']


def answers(netloc):
    """True when something answers HTTP on netloc (any status)."""
    try:
        urllib.request.urlopen('http://{}/v2/'.format(netloc), timeout=2).close()
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def push(upstream, source, dest, *extra):
    """skopeo copy upstream's `source` (e.g. test/base:1.0) to `dest` (full reference)."""
    skopeo('copy', *NO_TLS, *extra, 'docker://' + upstream.ref(source), 'docker://' + dest)


def docker_host(*args, env=None, input=None, check=True):
    """The host's docker CLI (its engine pulls from the unit's registry over loopback)."""
    return subprocess.run(('docker',) + args, capture_output=True, text=True, env=env,
                          input=input, check=check, timeout=300)


def docker_pull_digest(ref, env=None):
    """docker pull ref on the host engine; returns the repo digest it recorded."""
    try:
        docker_host('pull', ref, env=env)
        digests = json.loads(docker_host('image', 'inspect', '--format',
                                         '{{json .RepoDigests}}', ref).stdout)
    finally:
        docker_host('rmi', ref, check=False)
    repo = ref.rsplit(':', 1)[0]
    found = [x.split('@', 1)[1] for x in digests if x.startswith(repo + '@')]
    assert len(found) == 1, digests
    return found[0]


def container_state(d, unit=UNIT):
    out = d.docker(unit, 'inspect', '--format', '{{json .State}}', 'registry', check=False)
    return json.loads(out) if out.strip() else None


def write_authfile(path, netloc, user, password):
    token = base64.b64encode('{}:{}'.format(user, password).encode()).decode()
    with open(path, 'w') as f:
        json.dump({'auths': {netloc: {'auth': token}}}, f)
    os.chmod(path, 0o600)
    return path


def log_since(d, mark, unit=UNIT):
    return d.model.log(unit)[mark:]


def hook_rc(d, hook, unit=UNIT):
    runs = [rc for name, rc in d.model.hooks_run(unit) if name == hook]
    assert runs, 'hook {} never ran'.format(hook)
    return runs[-1]


# --- deployments ---------------------------------------------------------------------------------
#
# Only the defaults deployment uses port 5000; the others take free ports.

def wait_port_free(port, timeout):
    deadline = time.monotonic() + timeout
    while not port_free(port) and time.monotonic() < deadline:
        time.sleep(2)
    assert port_free(port), ('port {} still in use after {}s (another model on this host?): '
                             'cannot test the default port'.format(port, timeout))


def deploy(deploy_factory, port=None, **kwargs):
    """deploy_factory(...) plus the netloc and Ready message of the deployment."""
    config = kwargs.pop('config', {})
    if port is None:
        port, debug = free_port_pair()
        config = dict(config, **{'registry-port': port, 'debug-port': debug})
    started = time.monotonic()
    d = deploy_factory(config=config, **kwargs)
    d.deploy_seconds = time.monotonic() - started
    d.deploy_history = d.model.status_history(UNIT)
    d.port = port
    d.netloc = '{}:{}'.format(d.address(), port)
    d.ready = 'Ready at {} (http)'.format(d.netloc)
    return d


def deploy_defaults(deploy_factory):
    wait_port_free(5000, timeout=60)
    return deploy(deploy_factory, port=5000)


@pytest.fixture(scope='module')
def shared(deploy_factory, upstream_registry, small_corpus):
    """Deployment with the resource and an empty engine, plus one pushed image (the seed)."""
    d = deploy(deploy_factory)
    d.seed_ref = d.netloc + '/core/seed:1.0'
    d.seed_digest = small_corpus.entry('test/base').digest
    if workload(d) == ('active', d.ready):
        push(upstream_registry, 'test/base:1.0', d.seed_ref)
    yield d
    d.model.destroy()


@pytest.fixture
def registry(shared):
    """The shared deployment, checked active and serving the seed image before the test."""
    assert_ready(shared)
    assert pulled_digest(shared.seed_ref) == shared.seed_digest
    return shared


def assert_ready(d):
    """active with the Ready message (update-status may append what it repaired)."""
    state, message = workload(d)
    assert state == 'active' and message.startswith(d.ready), \
        d.model.status_history(UNIT)[-10:]


def assert_seed_intact(d):
    assert_ready(d)
    state = container_state(d)
    assert state['Running'] and not state['Restarting'], state
    assert pulled_digest(d.seed_ref) == d.seed_digest


# --- 1. defaults ---------------------------------------------------------------------------------

def test_defaults_ready_after_maintenance_steps_push_and_docker_pull(
        deploy_factory, upstream_registry, small_corpus):
    d = deploy_defaults(deploy_factory)
    ready = 'Ready at {}:5000 (http)'.format(d.address())
    try:
        history = d.deploy_history
        steps = ['Installing docker.io',
                 'Loading registry image from the registry-image resource',
                 'Configuring the registry']
        positions = []
        for message in steps:
            assert ('maintenance', message) in history, history
            positions.append(history.index(('maintenance', message)))
        assert positions == sorted(positions), history
        assert history.index(('active', ready)) > positions[-1], history
        assert not any(state == 'active' for state, _ in history[:positions[-1]]), history
        assert history[-1] == ('active', ready), history
        assert workload(d) == ('active', ready)
        assert d.model.status()['applications'][APP]['units'][UNIT]['open-ports'] == \
            ['5000/tcp']

        assert http_get('http://{}:5000/v2/'.format(d.address()))[0] == 200
        expected = small_corpus.entry('test/app-a').digest
        ref = '{}:5000/core/defaults-app-a:1.0'.format(d.address())
        push(upstream_registry, 'test/app-a:1.0', ref)
        assert docker_pull_digest(ref) == expected
    finally:
        d.model.destroy()  # free port 5000 for whoever needs it next


# --- 2. basic auth -------------------------------------------------------------------------------

def test_basic_auth_password_with_special_characters(registry, upstream_registry, small_corpus,
                                                     tmp_path):
    d = registry
    log_mark = len(d.model.log(UNIT))
    d.config(auth_basic_password=PASSWORD)
    try:
        # Active, with the warning the README's policy promises for basic auth over HTTP.
        assert workload(d) == ('active', d.ready + '; WARNING: basic auth over plain HTTP '
                               'sends the password in clear; configure TLS'), \
            d.model.status_history(UNIT)[-10:]
        url = 'http://{}/v2/'.format(d.netloc)
        assert http_get(url)[0] == 401
        assert http_get(url, ('admin', 'wrong' + PASSWORD))[0] == 401
        assert http_get(url, ('admin', PASSWORD[:-1]))[0] == 401
        assert http_get(url, ('admin', PASSWORD))[0] == 200

        # skopeo push with credentials from an authfile (never on the command line).
        authfile = write_authfile(tmp_path / 'auth.json', d.netloc, 'admin', PASSWORD)
        ref = d.netloc + '/core/auth-app-b:1.0'
        denied = skopeo('copy', *NO_TLS, 'docker://' + upstream_registry.ref('test/app-b:1.0'),
                        'docker://' + ref, check=False)
        assert denied.returncode != 0
        push(upstream_registry, 'test/app-b:1.0', ref, '--dest-authfile', str(authfile))
        expected = small_corpus.entry('test/app-b').digest
        assert pulled_digest(ref, '--src-authfile', str(authfile)) == expected

        # docker login reads the password from stdin into a private client config.
        env = dict(os.environ, DOCKER_CONFIG=str(tmp_path / 'docker-config'))
        bad = docker_host('login', d.netloc, '--username', 'admin', '--password-stdin',
                          env=env, input='nope\n', check=False)
        assert bad.returncode != 0
        login = docker_host('login', d.netloc, '--username', 'admin', '--password-stdin',
                            env=env, input=PASSWORD + '\n', check=False)
        assert login.returncode == 0, login.stderr
        assert 'Login Succeeded' in login.stdout
        assert docker_pull_digest(ref, env=env) == expected

        # The password is nowhere an operator or another process could read it.
        assert PASSWORD not in log_since(d, log_mark)
        assert PASSWORD not in json.dumps(d.model.status())
        assert PASSWORD not in json.dumps(d.model.status_history(UNIT))
        inspect = d.docker(UNIT, 'inspect', 'registry')
        assert PASSWORD not in inspect
        assert PASSWORD not in json.dumps(json.loads(inspect))  # JSON-escaped form too
        for path in ('/etc/docker/registry/htpasswd', '/etc/docker/registry/config.yml'):
            mode = d.on_machine(UNIT, 'stat', '-c', '%a %U', path).stdout.split()
            assert mode == ['600', 'root'], (path, mode)
            content = d.on_machine(UNIT, 'cat', path).stdout
            assert PASSWORD not in content, path
        htpasswd = d.on_machine(UNIT, 'cat', '/etc/docker/registry/htpasswd').stdout
        assert htpasswd.startswith('admin:$2'), 'not a bcrypt entry'
    finally:
        d.model.config(APP, reset=['auth-basic-password'])
    assert http_get('http://{}/v2/'.format(d.netloc))[0] == 200
    assert d.on_machine(UNIT, 'test', '-e', '/etc/docker/registry/htpasswd',
                        check=False).returncode != 0


# --- 3. invalid config ---------------------------------------------------------------------------

@pytest.mark.parametrize('bad, option', [
    ({'log-level': 'bogus'}, 'log-level'),
    ({'debug-port': 'REGISTRY-PORT'}, 'debug-port'),
], ids=['log-level', 'port-clash'])
def test_invalid_config_blocks_and_keeps_serving(registry, bad, option):
    d = registry
    bad = {k: d.port if v == 'REGISTRY-PORT' else v for k, v in bad.items()}
    original = {k: d.model.config(APP)[k] for k in bad}
    before = d.container_id()
    started_at = container_state(d)['StartedAt']
    d.model.config(APP, bad)
    try:
        state, message = workload(d)
        assert state == 'blocked', (state, message)
        assert option in message, message
        assert d.container_id() == before
        assert container_state(d)['StartedAt'] == started_at, 'registry restarted'
        assert pulled_digest(d.seed_ref) == d.seed_digest
        d.model.update_status()
        assert workload(d) == (state, message)
        assert d.container_id() == before
    finally:
        d.model.config(APP, original)
    assert_seed_intact(d)
    assert d.container_id() == before


# --- 4. container killed / removed ----------------------------------------------------------

def test_killed_container_is_restarted_by_update_status(registry):
    d = registry
    before = d.container_id()
    d.docker(UNIT, 'kill', 'registry')
    time.sleep(1)
    assert not container_state(d)['Running'], 'docker restarted the killed registry itself'
    assert not answers(d.netloc)
    d.model.hook(UNIT, 'update-status')
    assert hook_rc(d, 'update-status') == 0
    assert container_state(d)['Running']
    assert d.container_id() == before  # same container, same configuration
    assert_seed_intact(d)


def test_removed_container_is_recreated_by_update_status(registry):
    d = registry
    before = d.container_id()
    d.docker(UNIT, 'rm', '-f', 'registry')
    assert container_state(d) is None
    assert not answers(d.netloc)
    d.model.update_status()
    assert hook_rc(d, 'update-status') == 0
    assert container_state(d)['Running']
    assert d.container_id() != before
    assert_seed_intact(d)


# --- 5. stop / start actions ---------------------------------------------------------------------

def test_stop_and_start_actions(registry):
    d = registry
    stopped = d.run(UNIT, 'stop')
    try:
        assert stopped['status'] == 'completed', stopped
        assert not container_state(d)['Running']
        assert not answers(d.netloc)
        state, message = workload(d)
        assert state == 'blocked' and 'stop' in message, message
        data = d.on_machine(UNIT, 'find', '/srv/registry', '-path', '*core/seed*',
                            '-name', 'link').stdout
        assert data.strip(), 'image data removed by stop'

        d.model.update_status()
        assert hook_rc(d, 'update-status') == 0
        assert not container_state(d)['Running'], 'update-status restarted a stopped registry'
        assert not answers(d.netloc)
        assert workload(d) == (state, message)
    finally:
        started = d.run(UNIT, 'start')
    assert started['status'] == 'completed', started
    assert started['results'].get('result') == d.ready, started
    assert_seed_intact(d)


# --- 6. upgrade-charm ----------------------------------------------------------------------------

def test_upgrade_charm_keeps_container_and_data(registry):
    d = registry
    before = d.container_id()
    started_at = container_state(d)['StartedAt']
    d.model.refresh(APP)
    assert hook_rc(d, 'upgrade-charm') == 0
    assert hook_rc(d, 'config-changed') == 0
    assert d.container_id() == before
    assert container_state(d)['StartedAt'] == started_at, 'registry restarted by upgrade'
    assert_seed_intact(d)


# --- 7. series upgrade ---------------------------------------------------------------------------

def test_series_upgrade_stops_then_restores(registry):
    d = registry
    d.model.upgrade_machine('0', 'prepare')
    try:
        assert hook_rc(d, 'pre-series-upgrade') == 0
        assert workload(d) == ('blocked', 'Series upgrade in progress')
        assert not container_state(d)['Running']
        assert not answers(d.netloc)
        d.model.update_status()
        assert workload(d) == ('blocked', 'Series upgrade in progress')
        assert not container_state(d)['Running']
    finally:
        d.model.upgrade_machine('0', 'complete')
    assert hook_rc(d, 'post-series-upgrade') == 0
    assert_seed_intact(d)


# --- 8. image sources (air gap) ------------------------------------------------------------------

def test_airgap_image_loaded_from_resource(registry):
    history = registry.deploy_history
    checking = ('maintenance', 'Checking for registry image registry:2')
    loading = ('maintenance', 'Loading registry image from the registry-image resource')
    assert checking in history and loading in history, history
    assert history.index(checking) < history.index(loading)
    assert ('maintenance', 'Pulling registry image registry:2') not in history, history
    assert registry.docker(UNIT, 'image', 'inspect', '--format', '{{.Id}}', 'registry:2').strip()


def test_preloaded_image_is_used_without_loading(deploy_factory):
    d = deploy(deploy_factory, preload=True, resource=False)
    try:
        assert workload(d) == ('active', d.ready), \
            d.model.status_history(UNIT)
        history = d.model.status_history(UNIT)
        assert ('maintenance', 'Checking for registry image registry:2') in history
        assert not any(m.startswith(('Loading', 'Pulling')) for _, m in history), history
        assert http_get('http://{}/v2/'.format(d.netloc))[0] == 200
    finally:
        d.model.destroy()


def test_no_image_and_no_resource_blocks_and_retries(deploy_factory):
    d = deploy(deploy_factory, resource=False)
    try:
        state, message = workload(d)
        assert state == 'blocked', (state, message)
        assert message.startswith('Cannot get registry image registry:2: '), message
        assert all(rc == 0 for _, rc in d.model.hooks_run(UNIT)), d.model.hooks_run(UNIT)

        pulls = d.model.status_history(UNIT).count(
            ('maintenance', 'Pulling registry image registry:2'))
        mark = len(d.model.log(UNIT))
        d.model.hook(UNIT, 'update-status')
        assert hook_rc(d, 'update-status') == 0
        assert workload(d) == (state, message)
        assert d.model.status_history(UNIT).count(
            ('maintenance', 'Pulling registry image registry:2')) == pulls + 1, \
            'update-status did not retry getting the image'
        assert 'Traceback' not in log_since(d, mark)
        assert 'Traceback' not in d.model.log(UNIT)
        assert container_state(d) is None
    finally:
        d.model.destroy()


# --- 9. the registry's own container must be the one answering -------------------------------

class _ForeignV2(http.server.BaseHTTPRequestHandler):
    """Another service on the port, answering GET /v2/ like an open registry."""

    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', '2')
        self.end_headers()
        self.wfile.write(b'{}')

    def log_message(self, *args):
        pass


def test_port_taken_by_another_service_is_not_ready(registry):
    """The readiness probe must not take another process's answer for the registry's: the
    new container cannot bind the port, so the old one, on its own port, serves on."""
    d = registry
    foreign = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _ForeignV2)
    port = foreign.server_address[1]
    threading.Thread(target=foreign.serve_forever, daemon=True).start()
    before = d.container_id()
    try:
        d.model.config(APP, {'registry-port': port})
        status, message = workload(d)
        assert status == 'blocked', (status, message)
        assert message.startswith('Registry refused the new configuration (registry-port'), \
            message
        assert d.container_id() == before
        state = container_state(d)
        assert state['Running'] and not state['Restarting'], state
        assert pulled_digest(d.seed_ref) == d.seed_digest
        d.model.update_status()
        assert workload(d) == (status, message), 'update-status retried a refused config'
    finally:
        foreign.shutdown()
        foreign.server_close()
        d.model.config(APP, {'registry-port': d.port})
    assert_seed_intact(d)
