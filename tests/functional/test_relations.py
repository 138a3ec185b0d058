"""Relations end to end: two units sharing an S3 bucket (moto_server), TLS from easyrsa,
basic auth, behind a real haproxy configured from the published `services` the way the
haproxy charm renders them, told to containerd through the docker-registry relation, and
watched by nrpe checks run with Debian's monitoring-plugins.

Every client below is configured only from what the charm published. One module-scoped
deployment; the tests run in file order.
"""
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from tests.support.clients import skopeo
from tests.support.deployment import APP, free_port_pair
from tests.support.containerd import PrivateContainerd
from tests.support.haproxy import HAProxy

pytestmark = pytest.mark.functional

UNITS = [APP + '/0', APP + '/1']
PASSWORD = 'relation: "secret" #1'
PAYLOAD_KEYS = {'registry_netloc', 'registry_url', 'basic_user', 'basic_password', 'tls_ca'}
JUJU_KEYS = {'private-address', 'ingress-address', 'egress-subnets'}
BUCKET = 'shared-images'
PUSH_MB = 64
CONCURRENT_PULLS = 50
RETRY_SECONDS = 10


def workload(d, unit):
    s = d.unit_status(unit)
    return s['current'], s['message']


def published(d):
    """{unit: payload} the containerd stand-in received, decoded, Juju's own keys dropped."""
    received = d.model.status()['applications']['containerd']['received']
    return {u: {k: v for k, v in bag.items() if k not in JUJU_KEYS}
            for u, bag in received.items()}


def services(d):
    return list(d.model.status()['applications']['haproxy']['services'].values())


class Client:
    """What a client knows from the payload: netloc, credentials and a CA directory."""

    def __init__(self, payload, workdir):
        self.payload = payload
        self.netloc = payload['registry_netloc']
        self.creds = '{}:{}'.format(payload['basic_user'], payload['basic_password'])
        self.cert_dir = tempfile.mkdtemp(dir=workdir)
        self.ca_file = os.path.join(self.cert_dir, 'ca.crt')
        with open(self.ca_file, 'w') as f:
            f.write(payload['tls_ca'])
        self.authfile = os.path.join(self.cert_dir, 'auth.json')
        self.trust(self.netloc)

    def trust(self, *netlocs):
        """Use the credentials with these registries too (units reached directly)."""
        token = base64.b64encode(self.creds.encode()).decode()
        auths = {netloc: {'auth': token} for netloc in (self.netloc,) + netlocs}
        with open(os.open(self.authfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                  'w') as f:
            json.dump({'auths': auths}, f)

    def digest(self, ref):
        return skopeo('inspect', '--authfile', self.authfile, '--cert-dir', self.cert_dir,
                      '--format', '{{.Digest}}', 'docker://' + ref).stdout.strip()

    def pull(self, ref):
        with tempfile.TemporaryDirectory() as out:
            done = skopeo('copy', '--src-authfile', self.authfile, '--src-cert-dir',
                          self.cert_dir, 'docker://' + ref, 'dir:' + out, check=False)
        return done


@pytest.fixture(scope='module')
def reg(deploy_factory, s3, tmp_path_factory):
    s3.create_bucket(BUCKET)
    port, debug = free_port_pair()
    d = deploy_factory(n=2, config={
        'registry-port': port, 'debug-port': debug, 'listen-on-unit-address': True,
        'auth-basic-password': PASSWORD,
        'storage-s3-bucket': BUCKET, 'storage-s3-region': 'us-east-1',
        'storage-s3-regionendpoint': s3.url, 'storage-s3-accesskey': 'AKIARELATIONS',
        'storage-s3-secretkey': 'relations-secret', 'storage-s3-skip-v4-auth': False})
    d.port = port
    d.dir = str(tmp_path_factory.mktemp('relations'))
    for other in ('containerd', 'easyrsa', 'haproxy', 'nrpe'):
        d.model.integrate(APP, other)
    d.proxy_address = d.model.status()['applications']['haproxy']['units']['haproxy/0'][
        'address']
    return d


def test_every_unit_publishes_the_same_client_facing_data(reg):
    proxy_netloc = '{}:{}'.format(reg.proxy_address, reg.port)
    for unit in UNITS:
        assert workload(reg, unit) == ('active', 'Ready at {} (https, proxied); load-balanced '
                                       'with 2 unit(s) behind the reverse proxy'.format(
                                           proxy_netloc))
    payloads = published(reg)
    assert sorted(payloads) == UNITS
    first = payloads[UNITS[0]]
    assert set(first) == PAYLOAD_KEYS
    assert all(p == first for p in payloads.values()), payloads
    ca = reg.model.remote_run('easyrsa', 'ca')['ca']
    assert first == {'registry_netloc': proxy_netloc, 'registry_url': 'https://' + proxy_netloc,
                     'basic_user': 'admin', 'basic_password': PASSWORD, 'tls_ca': ca}
    configured = reg.model.status()['applications']['containerd']['configured']
    assert {k: configured[k] for k in PAYLOAD_KEYS} == first
    for unit in UNITS:
        assert PASSWORD not in reg.model.log(unit)


def test_the_leader_describes_one_balanced_service(reg):
    published_services = services(reg)
    assert len(published_services) == 1
    service = published_services[0]
    assert service['service_name'] == APP and service['service_port'] == reg.port
    assert 'mode tcp' in service['service_options']
    servers = sorted(service['servers'])
    assert [s[:3] for s in servers] == [[u.replace('/', '-'), reg.address(u), reg.port]
                                        for u in UNITS]
    assert all('check-ssl' in s[3] and 'backup' not in s[3] for s in servers), servers


@pytest.fixture(scope='module')
def proxy(reg):
    with HAProxy(services(reg), reg.proxy_address, reg.dir) as haproxy:
        haproxy.wait_for(lambda stats: len(stats) == 2 and
                         all(row['status'] == 'UP' for row in stats.values()))
        yield haproxy


@pytest.fixture(scope='module')
def client(reg):
    return Client(published(reg)[UNITS[0]], reg.dir)


def test_a_large_push_through_the_proxy_is_balanced_and_served_by_every_unit(
        reg, proxy, client, corpus_factory):
    corpus = corpus_factory(PUSH_MB)
    assert corpus.blob_bytes >= 50 * 1024 * 1024
    before = {name: int(row['stot']) for name, row in proxy.stats().items()}
    pushed = corpus.push(client.netloc, prefix='big/', creds=client.creds,
                         cert_dir=client.cert_dir)
    used = [name for name, row in proxy.stats().items() if int(row['stot']) > before[name]]
    assert len(used) >= 2, proxy.stats()
    client.trust(*('{}:{}'.format(reg.address(unit), reg.port) for unit in UNITS))
    for unit in UNITS:
        direct = '{}:{}'.format(reg.address(unit), reg.port)
        for ref, digest in pushed.items():
            assert client.digest(ref.replace(client.netloc, direct, 1)) == digest
    ref = next(iter(pushed))
    done = client.pull(ref.replace(client.netloc, '{}:{}'.format(reg.address(UNITS[1]),
                                                                 reg.port), 1))
    assert done.returncode == 0, done.stderr
    reg.pushed = pushed


def test_containerd_pulls_with_the_published_credentials_and_ca(reg, proxy, client):
    ref = next(r for r in reg.pushed if 'multiarch' not in r)
    hosts = tempfile.mkdtemp(dir=reg.dir)
    os.makedirs(os.path.join(hosts, client.netloc))
    with open(os.path.join(hosts, client.netloc, 'hosts.toml'), 'w') as f:
        f.write('server = "https://{0}"\n[host."https://{0}"]\n  capabilities = '
                '["pull", "resolve"]\n  ca = "{1}"\n'.format(client.netloc, client.ca_file))
    with PrivateContainerd(reg.dir) as containerd:
        denied = containerd.ctr('images', 'pull', '--hosts-dir', hosts, ref, check=False)
        assert denied.returncode != 0 and '401' in denied.stderr, denied.stderr
        containerd.ctr('images', 'pull', '--hosts-dir', hosts, '--user', client.creds, ref)
        assert reg.pushed[ref] in containerd.ctr('images', 'ls').stdout


def test_docker_logs_in_and_pulls_through_the_proxy(reg, proxy, client):
    ref = next(r for r in reg.pushed if 'app-a' in r)
    certs_d = '/etc/docker/certs.d/' + client.netloc
    os.makedirs(certs_d, exist_ok=True)
    shutil.copyfile(client.ca_file, os.path.join(certs_d, 'ca.crt'))
    config_dir = tempfile.mkdtemp(dir=reg.dir)  # the login stays out of ~/.docker
    env = dict(os.environ, DOCKER_CONFIG=config_dir)
    try:
        subprocess.run(['docker', 'login', '--username', client.payload['basic_user'],
                        '--password-stdin', client.netloc], input=client.payload['basic_password'],
                       text=True, env=env, check=True, capture_output=True, timeout=60)
        subprocess.run(['docker', 'pull', ref], env=env, check=True, capture_output=True,
                       timeout=300)
        digests = subprocess.run(['docker', 'image', 'inspect', '--format',
                                  '{{json .RepoDigests}}', ref], env=env, check=True,
                                 capture_output=True, text=True).stdout
        assert reg.pushed[ref] in digests
    finally:
        subprocess.run(['docker', 'rmi', ref], capture_output=True)
        shutil.rmtree(certs_d, ignore_errors=True)


def test_pulls_keep_working_with_one_unit_down(reg, proxy, client):
    reg.docker(UNITS[1], 'stop', 'registry')
    name = UNITS[1].replace('/', '-')
    proxy.wait_for(lambda stats: stats[name]['status'].startswith('DOWN'))
    for ref, digest in list(reg.pushed.items())[:4]:
        done = client.pull(ref)
        assert done.returncode == 0, done.stderr
        assert client.digest(ref) == digest
    reg.model.update_status()  # the charm brings its registry back
    assert workload(reg, UNITS[1])[0] == 'active'
    proxy.wait_for(lambda stats: stats[name]['status'] == 'UP')


# Its retry times are the charm's and haproxy's, not the other test worker's load: 50 skopeo
# clients alone keep both cores busy (a run beside the switch test's charm build: 11 s).
@pytest.mark.exclusive
def test_pulls_survive_a_unit_removed_behind_the_proxy(reg, proxy, client, upstream_registry):
    # 50 clients pull through haproxy, over and over, while a third unit is removed (S3
    # storage: every unit serves every image). A pull that fails is retried; each must
    # succeed within RETRY_SECONDS of its first failure, with the same digest.
    ref = '{}/churn/base:1.0'.format(client.netloc)
    copied = skopeo('copy', '--src-tls-verify=false', '--dest-authfile', client.authfile,
                    '--dest-cert-dir', client.cert_dir,
                    'docker://' + upstream_registry.ref('test/base:1.0'), 'docker://' + ref,
                    check=False)
    assert copied.returncode == 0, copied.stderr
    digest = client.digest(ref)
    reg.model.add_unit(APP)
    leaving = APP + '/2'
    assert workload(reg, leaving)[0] == 'active', reg.model.status_history(leaving)[-4:]
    proxy.stop()  # the haproxy charm re-renders on relation changes: one with 3 servers
    removed = threading.Event()
    outcomes = []

    def pull_until_the_unit_is_gone():
        pulls, failures, failed_since, longest_retry = 0, 0, None, 0.0
        while not removed.is_set() or failed_since is not None or pulls < 2:
            done = client.pull(ref)
            if done.returncode == 0:
                pulls += 1
                if failed_since is not None:
                    longest_retry = max(longest_retry, time.monotonic() - failed_since)
                    failed_since = None
                time.sleep(0.5)  # a busy client, not a CPU hog on this 2-core machine
            else:
                failures += 1
                failed_since = failed_since or time.monotonic()
                if time.monotonic() - failed_since > 60:
                    break
                time.sleep(0.2)
        outcomes.append((pulls, failures, failed_since, longest_retry))

    try:
        with HAProxy(services(reg), reg.proxy_address, reg.dir) as haproxy:
            haproxy.wait_for(lambda stats: len(stats) == 3 and
                             all(row['status'] == 'UP' for row in stats.values()))
            threads = [threading.Thread(target=pull_until_the_unit_is_gone)
                       for _ in range(CONCURRENT_PULLS)]
            for thread in threads:
                thread.start()
            time.sleep(2)
            reg.model.remove_unit(leaving)
            removed.set()
            for thread in threads:
                thread.join(180)
            served = {name: int(row['stot']) for name, row in haproxy.stats().items()}
            after = client.digest(ref)
    finally:
        proxy.start()
    print('\n{} clients: {} pulls, {} failed and retried, longest retry {:.1f} s, sessions '
          'per server {}'.format(len(outcomes), sum(o[0] for o in outcomes),
                                 sum(o[1] for o in outcomes), max(o[3] for o in outcomes),
                                 served))
    assert len(outcomes) == CONCURRENT_PULLS
    assert all(failed_since is None for _, _, failed_since, _ in outcomes), outcomes
    assert max(retry for _, _, _, retry in outcomes) <= RETRY_SECONDS, outcomes
    assert served[leaving.replace('/', '-')] > 0, served  # it did serve before it left
    assert sorted(published(reg)) == UNITS
    assert after == digest


def test_nrpe_checks_pass_with_tls_and_auth_on(reg):
    for unit in UNITS:
        commands = nrpe_commands(reg, unit)
        assert sorted(commands) == ['docker_registry_certificate', 'docker_registry_http']
        for name, command in commands.items():
            done = reg.on_machine(unit, 'sh', '-c', command, check=False)
            assert done.returncode == 0, (name, command, done.stdout, done.stderr)


def nrpe_commands(d, unit):
    listing = d.on_machine(unit, 'sh', '-c', 'cat /etc/nagios/nrpe.d/check_*.cfg',
                           check=False).stdout
    return dict(re.findall(r'^command\[([^\]]+)\]=(.+)$', listing, re.M))


def test_with_filesystem_storage_one_unit_is_active_and_the_others_back_it_up(reg):
    reg.config(storage_s3_bucket='', storage_s3_region='', storage_s3_regionendpoint='',
               storage_s3_accesskey='', storage_s3_secretkey='')
    servers = sorted(services(reg)[0]['servers'])
    assert ['backup' in s[3] for s in servers] == [False, True], servers
    assert workload(reg, UNITS[0])[1].endswith(
        'active server behind the reverse proxy (filesystem storage: one active unit)')
    assert workload(reg, UNITS[1])[1].endswith(
        'backup server behind the reverse proxy (filesystem storage: {} is active)'.format(
            UNITS[0]))
    with HAProxy(services(reg), reg.proxy_address, reg.dir) as haproxy:
        haproxy.wait_for(lambda stats: all(row['status'] == 'UP' for row in stats.values()))
        assert 'backup' in haproxy.config()
    # the free-space check joins in, and passes
    commands = nrpe_commands(reg, UNITS[0])
    assert 'docker_registry_disk' in commands
    assert reg.on_machine(UNITS[0], 'sh', '-c', commands['docker_registry_disk'],
                          check=False).returncode == 0


def test_a_new_leader_publishes_the_same_data(reg):
    before = published(reg)[UNITS[1]]
    reg.model.remove_unit(UNITS[0])
    status = reg.model.status()
    assert status['applications'][APP]['units'][UNITS[1]]['leader']
    after = published(reg)
    assert sorted(after) == UNITS[1:]
    assert all(p == before for p in after.values())
    [server] = services(reg)[0]['servers']
    assert server[0] == UNITS[1].replace('/', '-') and 'backup' not in server[3]


def test_departing_relations_take_back_what_they_created(reg):
    reg.model.remove_relation(APP, 'nrpe')
    for unit in UNITS[1:]:
        assert nrpe_commands(reg, unit) == {}
    reg.model.remove_relation(APP, 'haproxy')
    direct = '{}:{}'.format(reg.address(UNITS[1]), reg.port)
    assert published(reg)[UNITS[1]]['registry_netloc'] == direct
    assert workload(reg, UNITS[1]) == ('active', 'Ready at {} (https)'.format(direct))
