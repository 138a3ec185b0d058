"""TLS end to end: the certificates relation with the runner's easyrsa (a real openssl CA),
blobs and paths, client certificates, rotation, and real clients (curl, skopeo, docker,
containerd's ctr) that trust the registry only through the CA they are given.

One module-scoped deployment goes through the states in order (tests depend on the order
they are written in). Note: docker treats 127.0.0.0/8 registries as insecure and skips
verification, and ctr uses plain HTTP for them unless a hosts.toml says https, so curl
and skopeo show that a missing CA fails and ctr that a wrong one does.
"""
import base64
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

from tests.support.clients import skopeo
from tests.support.deployment import APP, free_port_pair
from tests.support.ca import TestCA
from tests.support.containerd import PrivateContainerd
from tests.support.probe import Prober, http_check, unverified_tls

pytestmark = pytest.mark.functional

UNIT = APP + '/0'
IMAGE = 'test/app-a:1.0'
MAX_DOWNTIME = 2.0
RETRY_SECONDS = 10
# Pushed again and again while the CA rotates (small_corpus images, single-platform).
ROTATION_PUSHES = ('test/base:1.0', 'test/app-b:1.0', 'test/many-layers:1.0')


def b64(data):
    return base64.b64encode(data).decode()


def curl(*args):
    """(exit code, HTTP status or None, stderr) of a curl GET."""
    proc = subprocess.run(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}',
                           '--max-time', '10'] + list(args),
                          capture_output=True, text=True)
    status = int(proc.stdout) if proc.stdout.strip().isdigit() else None
    return proc.returncode, status or None, proc.stderr


def served_certificate(address, port):
    """PEM of the certificate the registry presents (not verified)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((address, port), timeout=5) as raw:
        with context.wrap_socket(raw) as tls:
            return ssl.DER_cert_to_PEM_cert(tls.getpeercert(binary_form=True))


def x509_text(pem):
    return subprocess.run(['openssl', 'x509', '-noout', '-text'], input=pem,
                          capture_output=True, text=True, check=True).stdout


def sans_of(pem):
    text = x509_text(pem)
    found = re.search(r'X509v3 Subject Alternative Name:.*?\n\s*(.+)\n', text)
    return set(re.findall(r'(?:DNS|IP Address):([^,\s]+)', found.group(1))) if found else set()


def issuer_of(pem):
    return subprocess.run(['openssl', 'x509', '-noout', '-issuer'], input=pem,
                          capture_output=True, text=True, check=True).stdout.strip()


class TlsRegistry:
    def __init__(self, deployment, port, workdir):
        self.d, self.port, self.dir = deployment, port, workdir
        self.address = deployment.address()
        self.netloc = '{}:{}'.format(self.address, self.port)

    def status(self):
        s = self.d.unit_status()
        return s['current'], s['message']

    def url(self, scheme='https'):
        return '{}://{}/v2/'.format(scheme, self.netloc)

    def easyrsa_ca(self):
        path = os.path.join(self.dir, 'easyrsa-ca-{}.crt'.format(time.monotonic_ns()))
        with open(path, 'w') as f:
            f.write(self.d.model.remote_run('easyrsa', 'ca')['ca'])
        return path

    def cert_dir(self, ca_path):
        directory = tempfile.mkdtemp(dir=self.dir)
        shutil.copyfile(ca_path, os.path.join(directory, 'ca.crt'))
        return directory

    def digest(self, ca_path, name=IMAGE):
        return skopeo('inspect', '--cert-dir', self.cert_dir(ca_path), '--format',
                      '{{.Digest}}', 'docker://{}/{}'.format(self.netloc, name)).stdout.strip()

    def on_machine(self, *argv, check=True, **kwargs):
        return self.d.on_machine(UNIT, *argv, check=check, **kwargs)


@pytest.fixture(scope='module')
def reg(deploy_factory, upstream_registry, tmp_path_factory):
    port, debug = free_port_pair()
    d = deploy_factory(config={'registry-port': port, 'debug-port': debug})
    r = TlsRegistry(d, port, str(tmp_path_factory.mktemp('tls')))
    assert r.status() == ('active', 'Ready at {} (http)'.format(r.netloc))
    # an image pushed over plain HTTP must survive every TLS change below
    skopeo('copy', '--src-tls-verify=false', '--dest-tls-verify=false',
           'docker://' + upstream_registry.ref(IMAGE), 'docker://{}/{}'.format(r.netloc, IMAGE))
    r.seed_digest = upstream_registry.digest(IMAGE)
    r.upstream = upstream_registry
    r.test_ca = TestCA(os.path.join(r.dir, 'operator-ca'), cn='Operator CA', days=365)
    return r


def test_the_certificates_relation_turns_https_on(reg):
    reg.d.model.integrate(APP, 'easyrsa')
    assert reg.status() == ('active', 'Ready at {} (https)'.format(reg.netloc))
    ca = reg.easyrsa_ca()
    assert curl('--cacert', ca, reg.url())[1] == 200
    code, _, err = curl(reg.url())  # the system store does not know this CA
    assert code == 60, err
    _, status, _ = curl(reg.url('http'))  # plain HTTP is refused by the TLS listener
    assert status == 400
    assert reg.digest(ca) == reg.seed_digest
    reg.relation_ca = ca


def test_the_certificate_names_every_address_clients_use(reg):
    hostname = reg.on_machine('hostname').stdout.strip()
    sans = sans_of(served_certificate(reg.address, reg.port))
    assert {reg.address, hostname} <= sans, sans
    reg.d.config(http_host='https://registry.example.test:{}/'.format(reg.port),
                 tls_extra_sans='mirror.example.test 192.0.2.200')
    sans = sans_of(served_certificate(reg.address, reg.port))
    assert {reg.address, hostname, 'registry.example.test', 'mirror.example.test',
            '192.0.2.200'} <= sans, sans
    # a client checking the host name against the proxy name (resolved locally)
    resolve = 'registry.example.test:{}:{}'.format(reg.port, reg.address)
    assert curl('--cacert', reg.relation_ca, '--resolve', resolve,
                'https://registry.example.test:{}/v2/'.format(reg.port))[1] == 200
    assert reg.status() == ('active', 'Ready at registry.example.test:{} (https)'.format(
        reg.port))
    reg.d.config(http_host='', tls_extra_sans='')


def test_skopeo_needs_the_ca_and_works_with_a_cert_dir(reg):
    dest = 'docker://{}/tls/skopeo:1.0'.format(reg.netloc)
    source = 'docker://' + reg.upstream.ref('test/base:1.0')
    refused = skopeo('copy', '--src-tls-verify=false', source, dest, check=False)
    assert refused.returncode != 0 and 'x509' in refused.stderr, refused.stderr
    skopeo('copy', '--src-tls-verify=false', '--dest-cert-dir', reg.cert_dir(reg.relation_ca),
           source, dest)
    assert reg.digest(reg.relation_ca, 'tls/skopeo:1.0') == reg.upstream.digest('test/base:1.0')


def test_docker_pulls_with_the_ca_in_certs_d(reg):
    certs_d = '/etc/docker/certs.d/' + reg.netloc
    os.makedirs(certs_d, exist_ok=True)
    shutil.copyfile(reg.relation_ca, os.path.join(certs_d, 'ca.crt'))
    ref = '{}/{}'.format(reg.netloc, IMAGE)
    try:
        subprocess.run(['docker', 'pull', ref], check=True, capture_output=True, timeout=120)
        digests = json.loads(subprocess.run(
            ['docker', 'image', 'inspect', '--format', '{{json .RepoDigests}}', ref],
            check=True, capture_output=True, text=True).stdout)
        assert '{}/test/app-a@{}'.format(reg.netloc, reg.seed_digest) in digests
    finally:
        subprocess.run(['docker', 'rmi', ref], capture_output=True)
        shutil.rmtree(certs_d, ignore_errors=True)


def hosts_dir(base, netloc, ca_path):
    """containerd's registry host config (hosts.toml) for netloc over https with ca_path."""
    directory = tempfile.mkdtemp(dir=base)
    os.makedirs(os.path.join(directory, netloc))
    with open(os.path.join(directory, netloc, 'hosts.toml'), 'w') as f:
        f.write('server = "https://{0}"\n\n[host."https://{0}"]\n'
                '  capabilities = ["pull", "resolve"]\n  ca = "{1}"\n'.format(netloc, ca_path))
    return directory


def test_containerd_ctr_pulls_with_the_right_ca_only(reg):
    # ctr talks plain HTTP to loopback hosts unless a hosts.toml says https (the way
    # containerd is configured for a registry on a real node).
    ref = '{}/{}'.format(reg.netloc, IMAGE)
    with PrivateContainerd(reg.dir) as containerd:
        wrong = hosts_dir(reg.dir, reg.netloc, str(reg.test_ca.cert))
        refused = containerd.ctr('images', 'pull', '--hosts-dir', wrong, ref, check=False)
        assert refused.returncode != 0 and 'x509' in refused.stderr, refused.stderr
        right = hosts_dir(reg.dir, reg.netloc, reg.relation_ca)
        containerd.ctr('images', 'pull', '--hosts-dir', right, ref)
        listed = containerd.ctr('images', 'ls').stdout
        assert reg.seed_digest in listed, listed


def test_the_units_own_actions_trust_the_registry_through_its_ca_file(reg):
    listed = reg.d.run(UNIT, 'images')
    assert listed['status'] == 'completed', listed
    assert 'test/app-a' in listed['results']['text']


def test_the_key_is_private_and_never_logged(reg):
    mode = reg.on_machine('stat', '-c', '%a', '/etc/docker/registry/tls/server.key').stdout
    assert mode.strip() == '600'
    key = reg.on_machine('cat', '/etc/docker/registry/tls/server.key').stdout
    body = ''.join(key.strip().splitlines()[1:-1])
    assert body and body[:40] not in reg.d.model.log(UNIT)


def test_rotating_the_ca_keeps_images_with_a_short_outage(reg):
    old_ca = reg.relation_ca
    # Every 20 ms, over HTTPS without checking the server: its CA changes mid-rotation.
    with Prober(http_check(reg.address, reg.port, tls=unverified_tls())) as prober:
        reg.d.model.remote_run('easyrsa', 'rotate-ca')
        time.sleep(1)
    new_ca = reg.easyrsa_ca()
    assert open(new_ca).read() != open(old_ca).read()
    assert curl('--cacert', new_ca, reg.url())[1] == 200
    assert curl('--cacert', old_ca, reg.url())[0] == 60
    assert reg.digest(new_ca) == reg.seed_digest
    assert prober.results[-1][1], prober.summary('still down at the end')
    assert prober.longest_outage() < MAX_DOWNTIME, prober.summary('outage too long')
    assert prober.successes() > 10
    reg.relation_ca = new_ca


def rotation_ref(name, n):
    """Where the n-th push of upstream image name goes: rotation/<repository>:<n>."""
    return 'rotation/{}:{}'.format(name.split(':')[0], n)


def test_pushes_during_a_rotation_are_retried_and_nothing_is_lost(reg):
    # Clients push, over and over, while the CA rotates. A push that fails (the registry
    # restarting, a certificate from a CA the client does not know yet) is retried with the
    # CA the relation now publishes; each must succeed within RETRY_SECONDS of its first
    # failure, and every image pushed before, during and after is served with its digest.
    trusted = {'ca': reg.relation_ca}
    rotated = threading.Event()
    outcomes = {}

    def push_until_rotated(name):
        pushes, failed_since, longest_retry = 0, None, 0.0
        while not rotated.is_set() or failed_since is not None or pushes < 2:
            done = skopeo('copy', '--src-tls-verify=false', '--dest-cert-dir',
                          reg.cert_dir(trusted['ca']), 'docker://' + reg.upstream.ref(name),
                          'docker://{}/{}'.format(reg.netloc, rotation_ref(name, pushes)),
                          check=False)
            if done.returncode == 0:
                pushes += 1
                if failed_since is not None:
                    longest_retry = max(longest_retry, time.monotonic() - failed_since)
                    failed_since = None
            else:
                failed_since = failed_since or time.monotonic()
                if time.monotonic() - failed_since > 60:
                    break
                time.sleep(0.2)
        outcomes[name] = (pushes, failed_since, longest_retry)

    threads = [threading.Thread(target=push_until_rotated, args=(name,))
               for name in ROTATION_PUSHES]
    for thread in threads:
        thread.start()
    time.sleep(1)
    reg.d.model.remote_run('easyrsa', 'rotate-ca')
    trusted['ca'] = reg.easyrsa_ca()  # what the relation gives clients now
    rotated.set()
    for thread in threads:
        thread.join(180)
    print('\npushes during a rotation: {}'.format(outcomes))
    assert sorted(outcomes) == sorted(ROTATION_PUSHES)
    for name, (pushes, failed_since, longest_retry) in outcomes.items():
        assert failed_since is None and pushes >= 2, (name, outcomes[name])
        assert longest_retry <= RETRY_SECONDS, (name, outcomes[name])
        for n in range(pushes):
            assert reg.digest(trusted['ca'], rotation_ref(name, n)) == reg.upstream.digest(name)
    assert reg.digest(trusted['ca']) == reg.seed_digest
    reg.relation_ca = trusted['ca']


def test_client_certificates_only_when_asked_for(reg):
    # A CA is present (the relation's) and client certificates are not required.
    assert curl('--cacert', reg.relation_ca, reg.url())[1] == 200
    client = reg.test_ca.client_cert('client')
    reg.d.config(tls_client_auth=True, tls_client_ca_blob=b64(reg.test_ca.cert.read_bytes()))
    assert reg.status()[0] == 'active'
    code, _, err = curl('--cacert', reg.relation_ca, reg.url())
    assert code != 0, 'a client without a certificate got in'
    assert curl('--cacert', reg.relation_ca, '--cert', str(client.cert), '--key',
                str(client.key), reg.url())[1] == 200
    # the unit's own actions present the unit's certificate and verify with the CA file
    listed = reg.d.run(UNIT, 'images')
    assert listed['status'] == 'completed', listed
    assert 'test/app-a' in listed['results']['text']
    reg.d.config(tls_client_auth=False, tls_client_ca_blob='')
    assert curl('--cacert', reg.relation_ca, reg.url())[1] == 200


def test_minimum_tls_version(reg):
    assert curl('--cacert', reg.relation_ca, '--tls-max', '1.2', reg.url())[1] == 200
    reg.d.config(tls_minimum_version='tls1.3')
    assert curl('--cacert', reg.relation_ca, '--tls-max', '1.2', reg.url())[0] != 0
    assert curl('--cacert', reg.relation_ca, reg.url())[1] == 200
    reg.d.config(tls_minimum_version='tls1.0')
    current, message = reg.status()
    assert current == 'blocked' and 'tls-minimum-version' in message
    assert curl('--cacert', reg.relation_ca, reg.url())[1] == 200  # still serving
    reg.d.config(tls_minimum_version='tls1.2')


def test_expiry_warning_keeps_the_unit_active(reg):
    reg.d.config(tls_expiry_warning_days=400)  # easyrsa's certificates last 365 days
    current, message = reg.status()
    assert current == 'active'
    assert re.search(r'; WARNING: TLS certificate expires in 36[45] days', message), message
    reg.d.config(tls_expiry_warning_days=30)
    assert 'WARNING' not in reg.status()[1]


def test_blobs_win_over_the_relation_and_bad_blobs_block(reg):
    server = reg.test_ca.server_cert('blob', [reg.address])
    other_key = reg.test_ca.server_cert('other', [reg.address]).key
    reg.d.config(tls_cert_blob=b64(server.cert.read_bytes()),
                 tls_key_blob=b64(other_key.read_bytes()))
    current, message = reg.status()
    assert current == 'blocked'
    assert 'tls-key-blob: does not match the certificate' in message, message
    assert 'Operator CA' not in issuer_of(served_certificate(reg.address, reg.port))
    assert curl('--cacert', reg.relation_ca, reg.url())[1] == 200  # last good config

    reg.d.config(tls_key_blob=b64(server.key.read_bytes()),
                 tls_ca_blob=b64(reg.test_ca.cert.read_bytes()))
    assert reg.status() == ('active', 'Ready at {} (https)'.format(reg.netloc))
    assert 'Operator CA' in issuer_of(served_certificate(reg.address, reg.port))
    assert curl('--cacert', str(reg.test_ca.cert), reg.url())[1] == 200

    reg.d.config(tls_cert_blob='', tls_key_blob='', tls_ca_blob='')
    assert curl('--cacert', reg.relation_ca, reg.url())[1] == 200  # the relation again


def test_removing_the_relation_falls_back_and_removes_only_its_files(reg):
    # operator files at the tls-*-path locations: never removed by the charm
    server = reg.test_ca.server_cert('paths', [reg.address])
    for src, dest in ((server.cert, '/etc/docker/registry/registry.crt'),
                      (server.key, '/etc/docker/registry/registry.key')):
        reg.on_machine('sh', '-c', 'cat > ' + dest, input=src.read_text())
    reg.d.model.remove_relation(APP, 'easyrsa')
    assert reg.status() == ('active', 'Ready at {} (https)'.format(reg.netloc))
    assert 'Operator CA' in issuer_of(served_certificate(reg.address, reg.port))
    left = reg.on_machine('ls', '-A', '/etc/docker/registry/relation').stdout.split()
    assert left == []
    assert reg.on_machine('cat', '/etc/docker/registry/registry.crt').stdout == \
        server.cert.read_text()

    reg.on_machine('rm', '/etc/docker/registry/registry.crt', '/etc/docker/registry/registry.key')
    reg.d.config(log_level='warn')  # any hook that converges notices the files are gone
    assert reg.status() == ('active', 'Ready at {} (http)'.format(reg.netloc))
    assert curl(reg.url('http'))[1] == 200
    assert reg.on_machine('ls', '-A', '/etc/docker/registry/tls').stdout.split() == []
    assert skopeo('inspect', '--tls-verify=false', '--format', '{{.Digest}}',
                  'docker://{}/{}'.format(reg.netloc, IMAGE)).stdout.strip() == reg.seed_digest


def test_tls_required_blocks_without_material_and_keeps_serving(reg):
    reg.d.config(tls_required=True)
    current, message = reg.status()
    assert current == 'blocked' and 'tls-required' in message, message
    assert curl(reg.url('http'))[1] == 200
    reg.d.model.integrate(APP, 'easyrsa')
    assert reg.status() == ('active', 'Ready at {} (https)'.format(reg.netloc))
    reg.d.config(tls_required=False)
