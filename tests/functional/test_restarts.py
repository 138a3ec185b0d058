"""Config changes restart the registry only when it must, briefly, and never dockerd.

One module-scoped deployment (real runner machine, its own dockerd, real registry container).
A prober thread sends GET /v2/ every 20 ms while a hook runs, so a restart the charm should
not have done shows up as failed probes, and a needed one as a measured gap.

All machines of every model share the host's network (each on its own leased loopback
address), so the unit binds to its own address (listen-on-unit-address) on a port nobody
else uses: with the default ":5000" on every address, another model's registry could hold the
port (ours then crash-loops) or answer our probes in its place.
"""
import subprocess
import tempfile
import time

import pytest
import yaml

from tests.support.clients import http_get
from tests.support.deployment import APP, free_port_pair
from tests.support.probe import Prober, http_check

UNIT = APP + '/0'
PROBE_INTERVAL = 0.02
MAX_DOWNTIME = 2.0
CONFIG_YML = '/etc/docker/registry/config.yml'
HTPASSWD = '/etc/docker/registry/htpasswd'
IMAGE = 'test/base:1.0'
AUTH_UP = (200, 401)  # while basic auth is switched on or off, both mean serving


def probing(host, port, up=(200,)):
    """GET /v2/ every 20 ms (new connection each time), from a moment the registry serves."""
    return Prober(http_check(host, port, up=up), interval=PROBE_INTERVAL, wait_serving=True)


class Registry:
    """The deployment plus what the tests need to know about it."""

    def __init__(self, deployment, port):
        self.d = deployment
        self.port = port
        self.host = deployment.address(UNIT)
        self.netloc = '{}:{}'.format(self.host, port)

    def url(self, path='/v2/'):
        return 'http://{}{}'.format(self.netloc, path)

    def cat(self, path):
        return self.d.on_machine(UNIT, 'cat', path).stdout

    def registry_config(self):
        return yaml.safe_load(self.cat(CONFIG_YML))

    def container(self):
        """(id, StartedAt) of the registry container."""
        out = self.d.docker(UNIT, 'inspect', '--format', '{{.Id}} {{.State.StartedAt}}',
                            'registry')
        container_id, started = out.split()
        return container_id, started

    def container_names(self):
        return sorted(self.d.docker(UNIT, 'ps', '-a', '--format', '{{.Names}}').split())

    def assert_active(self):
        status = self.d.unit_status(UNIT)
        assert status['current'] == 'active', status

    def configure(self, options, up=(200,)):
        """Change config ({option: value}, Juju names) while probing; returns the Prober.

        Calls model.config directly: Deployment.config turns every '_' into '-', which
        breaks options really spelled with '_' (nagios_context).
        """
        label = ', '.join('{}={}'.format(k, v) for k, v in options.items())
        started = time.monotonic()
        with probing(self.host, self.port, up=up) as prober:
            self.d.model.config(APP, options)
        label += ' (hook took {:.1f} s)'.format(time.monotonic() - started)
        print('\n' + prober.summary(label))
        self.assert_active()
        return prober

    def dockerd(self):
        """(recorded pid, its start time, pid in the machine's /run/docker.pid)."""
        pid = self.d.model.status()['machines']['0']['dockerd-pid']
        with open('/proc/{}/stat'.format(pid)) as stream:
            start_time = stream.read().rsplit(')', 1)[1].split()[19]
        with open('/proc/{}/cmdline'.format(pid), 'rb') as stream:
            assert b'dockerd' in stream.read().split(b'\0')[0]
        pidfile = self.cat('/run/docker.pid').strip()
        return pid, start_time, int(pidfile)


def skopeo(*args, check=True):
    return subprocess.run(('skopeo',) + args, capture_output=True, text=True, timeout=120,
                          check=check)


def copy(src, dest):
    return skopeo('copy', '--src-tls-verify=false', '--dest-tls-verify=false',
                  'docker://' + src, 'docker://' + dest, check=False)


def digest(ref):
    return skopeo('inspect', '--tls-verify=false', '--format', '{{.Digest}}',
                  'docker://' + ref).stdout.strip()


@pytest.fixture(scope='module')
def registry(deploy_factory, upstream_registry):
    port, _ = free_port_pair()
    deployment = deploy_factory(config={'listen-on-unit-address': True, 'registry-port': port})
    reg = Registry(deployment, port)
    reg.assert_active()
    assert http_get(reg.url())[0] == 200
    reg.dockerd_before = reg.dockerd()
    reg.upstream = upstream_registry.address
    pushed = copy('{}/{}'.format(reg.upstream, IMAGE), '{}/{}'.format(reg.netloc, IMAGE))
    assert pushed.returncode == 0, pushed.stderr
    reg.image_digest = digest('{}/{}'.format(reg.netloc, IMAGE))
    assert reg.image_digest.startswith('sha256:')
    return reg


def assert_image_served(reg):
    assert digest('{}/{}'.format(reg.netloc, IMAGE)) == reg.image_digest
    with tempfile.TemporaryDirectory() as out:  # a full pull: manifest and every blob
        pulled = skopeo('copy', '--src-tls-verify=false', 'docker://{}/{}'.format(
            reg.netloc, IMAGE), 'dir:' + out, check=False)
        assert pulled.returncode == 0, pulled.stderr


def test_unrelated_change_keeps_container(registry):
    before = registry.container()
    config_before = registry.cat(CONFIG_YML)
    prober = registry.configure({'nagios_context': 'other'})
    assert len(prober.results) >= 20, prober.summary('too few probes')
    assert prober.failures() == [], prober.summary('failed probes')
    # Same container, and not restarted in place either.
    assert registry.container() == before
    assert registry.cat(CONFIG_YML) == config_before
    assert registry.container_names() == ['registry']


@pytest.mark.parametrize('option, value, back, check', [
    ('log-level', 'debug', 'info', lambda cfg: cfg['log']['level'] == 'debug'),
    ('storage-read-only', True, False,
     lambda cfg: cfg['storage']['maintenance']['readonly']['enabled'] is True),
], ids=['log-level', 'storage-read-only'])
def test_relevant_change_recreates_briefly(registry, option, value, back, check):
    before_id, _ = registry.container()
    assert not check(registry.registry_config())
    prober = registry.configure({option: value})
    after_id, _ = registry.container()
    assert after_id != before_id, 'container not recreated for ' + option
    assert registry.container_names() == ['registry']
    assert check(registry.registry_config()), registry.cat(CONFIG_YML)
    failed_time = len(prober.failures()) * PROBE_INTERVAL
    assert prober.longest_gap() < MAX_DOWNTIME, prober.summary('downtime too long')
    assert failed_time < MAX_DOWNTIME, prober.summary('downtime too long')
    assert_image_served(registry)

    if option == 'storage-read-only':
        refused = copy('{}/test/app-b:1.0'.format(registry.upstream),
                       '{}/test/refused:1.0'.format(registry.netloc))
        assert refused.returncode != 0, 'push accepted by a read-only registry'
        assert_image_served(registry)
    # Set it back: recreated again, brief again, data still there, pushes work when writable.
    prober = registry.configure({option: back})
    assert registry.container()[0] != after_id
    assert not check(registry.registry_config())
    assert prober.longest_gap() < MAX_DOWNTIME, prober.summary('downtime too long')
    assert len(prober.failures()) * PROBE_INTERVAL < MAX_DOWNTIME
    assert_image_served(registry)
    if option == 'storage-read-only':
        pushed = copy('{}/test/app-b:1.0'.format(registry.upstream),
                      '{}/test/writable:1.0'.format(registry.netloc))
        assert pushed.returncode == 0, pushed.stderr


def test_auth_only_change_recreates(registry):
    before_id, _ = registry.container()
    prober = registry.configure({'auth-basic-password': 's3cret-pass'}, up=AUTH_UP)
    assert prober.longest_gap() < MAX_DOWNTIME, prober.summary('downtime too long')
    with_auth_id, _ = registry.container()
    assert with_auth_id != before_id
    assert http_get(registry.url())[0] == 401
    assert http_get(registry.url(), auth=('admin', 's3cret-pass'))[0] == 200
    assert http_get(registry.url(), auth=('admin', 'wrong'))[0] == 401
    registry.configure({'auth-basic-password': ''}, up=AUTH_UP)
    assert registry.container()[0] != with_auth_id
    assert http_get(registry.url())[0] == 200
    assert registry.d.on_machine(UNIT, 'test', '-e', HTPASSWD, check=False).returncode != 0
    assert_image_served(registry)


def _identical_hooks(registry):
    model = registry.d.model
    for hook in ('config-changed', 'config-changed', 'update-status'):
        result = model.hook(UNIT, hook)
        assert result['rc'] == 0, result
        registry.assert_active()


def test_identical_config_changes_nothing(registry):
    before = registry.container()
    with probing(registry.host, registry.port) as prober:
        _identical_hooks(registry)
    print('\n' + prober.summary('identical hooks, no auth'))
    assert prober.failures() == [], prober.summary('failed probes')
    assert registry.container() == before

    # With a password: bcrypt salts each hash, so a fresh one per hook would restart.
    registry.configure({'auth-basic-password': 's3cret-pass'}, up=AUTH_UP)
    before = registry.container()
    htpasswd = registry.cat(HTPASSWD)
    assert htpasswd.startswith('admin:$2'), 'not a bcrypt entry'
    print('\nhtpasswd scheme and cost: ' + htpasswd.split(':', 1)[1][:7])
    # Probe without credentials: a 401 proves the registry serves with auth on, and costs
    # no bcrypt check (an authenticated probe spends ~0.25 s of CPU in bcrypt per request
    # and times out under the hooks' load, which would say nothing about restarts).
    with probing(registry.host, registry.port, up=(401,)) as prober:
        _identical_hooks(registry)
    print('\n' + prober.summary('identical hooks, with password'))
    assert prober.failures() == [], prober.summary('failed probes')
    assert registry.container() == before
    assert registry.cat(HTPASSWD) == htpasswd
    # Identical config leaves config.changed unset, so the hooks above may not even reach
    # the code that renders htpasswd; an unrelated change does, with the same password.
    prober = registry.configure({'nagios_context': 'again'}, up=(401,))
    assert prober.failures() == [], prober.summary('failed probes')
    assert registry.cat(HTPASSWD) == htpasswd, 'htpasswd re-hashed for the same password'
    assert registry.container() == before
    assert http_get(registry.url(), auth=('admin', 's3cret-pass'))[0] == 200
    registry.configure({'auth-basic-password': ''}, up=AUTH_UP)
    assert http_get(registry.url())[0] == 200


def test_dockerd_never_restarted(registry):
    after = registry.dockerd()
    print('\ndockerd (pid, start time, pidfile) before {} after {}'.format(
        registry.dockerd_before, after))
    assert after == registry.dockerd_before
    assert after[0] == after[2]
