"""A switch from the Charmed Kubernetes docker-registry charm to this one (issue 11, point 6).

The existing charm (src/ of ../shared/upstream/charm-docker-registry.tar.gz, built with the
same charm-tools and offline layers: tests.support.charm_build.existing_charm) is deployed
with basic auth and a certificate from easyrsa on its `cert-provider` endpoint, and images
are pushed to it. Its machine serves what it publishes with `docker run -p` on the machine's
address (the runner's stand-in for docker's port publishing: localjuju/docker_publish.py).
Then the README's procedure:

  1. remove-relation docker-registry:cert-provider easyrsa
  2. refresh docker-registry --switch <this charm>
  3. integrate docker-registry:certificates easyrsa:client

A probe thread asks GET /v2/ (with the credentials) every 50 ms during the whole procedure;
an answer 200 over HTTPS verified with the easyrsa CA, or over plain HTTP, counts as
available. The TLS steps are excluded from the downtime budget, precisely:
  * step 1, from the call to remove-relation until the registry answers again after it
    returned (the old charm restarts its container and the docker engine to drop TLS);
  * step 3, from the call to integrate until the registry serves the certificate the new
    relation delivered (our charm recreates its container with TLS).
Everything else (step 2 in full, and the time around the steps) may add up to at most 5 s
of unavailability.

Secrets never reach a command line: skopeo reads an authfile, the probe uses urllib.
"""
import base64
import hashlib
import json
import os
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

import localjuju
from localjuju import LocalJujuError
from tests.support.clients import skopeo
from tests.support.deployment import APP, Deployment, free_port_pair
from tests.support.charm_build import existing_charm

pytestmark = pytest.mark.functional

UNIT = APP + '/0'
PASSWORD = 'sw1tch: p@ss #\'"x'
IMAGES = ('test/base', 'test/app-a', 'test/app-b')
DOWNTIME_BUDGET = 5.0
OLD_FLAG_PREFIXES = ('charm.docker-registry.', 'cert-provider.', 'endpoint.cert-provider.',
                     'docker.', 'apt.', 'nvidia-docker.', 'cgroups.modified')


# --- helpers ---------------------------------------------------------------------------------

def write_authfile(path, netloc, user, password):
    token = base64.b64encode('{}:{}'.format(user, password).encode()).decode()
    with open(path, 'w') as f:
        json.dump({'auths': {netloc: {'auth': token}}}, f)
    os.chmod(path, 0o600)
    return str(path)


def get(url, ca_file=None, auth=None, timeout=2, client=None):
    """HTTP status of GET url; OSError when nothing answers (or TLS fails).
    client: (cert file, key file) to present."""
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode('{}:{}'.format(*auth).encode()).decode()
        request.add_header('Authorization', 'Basic ' + token)
    context = None
    if url.startswith('https'):
        context = ssl.create_default_context(cafile=ca_file)
        if client:
            context.load_cert_chain(*client)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def served_certificate(host, port, timeout=2):
    """DER of the certificate served on host:port (unverified), or None."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            with context.wrap_socket(sock) as tls:
                return tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None


def _answers(netloc, ca_file, auth):
    """True when GET /v2/ over HTTPS without a client certificate gets 200."""
    try:
        return get('https://{}/v2/'.format(netloc), ca_file, auth) == 200
    except OSError:
        return False


def relation_bag(model, endpoint):
    """easyrsa's bag on our `endpoint` relation."""
    for rel in model.status()['relations']:
        if '{}:{}'.format(APP, endpoint) in rel['endpoints']:
            for unit, bag in rel['units'].items():
                if unit.startswith('easyrsa/'):
                    return bag
    return {}


def relation_certificates(model, endpoint):
    """DERs of every certificate easyrsa put in its bag on our `endpoint` relation."""
    found = []
    for rel in model.status()['relations']:
        if '{}:{}'.format(APP, endpoint) not in rel['endpoints']:
            continue
        for unit, bag in rel['units'].items():
            if not unit.startswith('easyrsa/'):
                continue
            for key, value in bag.items():
                if key.endswith('.server.cert') or key.endswith('.processed_requests'):
                    text = value if isinstance(value, str) else json.dumps(value)
                    for pem in text.replace('\\n', '\n').split('-----BEGIN CERTIFICATE-----')[1:]:
                        body = pem.split('-----END CERTIFICATE-----')[0]
                        found.append(ssl.PEM_cert_to_DER_cert(
                            '-----BEGIN CERTIFICATE-----' + body + '-----END CERTIFICATE-----\n'))
    return found


def wait_for(predicate, timeout, interval=0.2, what='condition'):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError('timed out after {}s waiting for {}'.format(timeout, what))


class Probe(threading.Thread):
    """GET /v2/ with credentials every 50 ms; records (monotonic time, available, scheme).
    It presents a client certificate, which the old charm requires with TLS on."""

    def __init__(self, netloc, ca_file, auth, client):
        super().__init__(daemon=True)
        self.netloc, self.ca_file, self.auth, self.client = netloc, ca_file, auth, client
        self.samples = []
        self.halt = threading.Event()

    def once(self):
        for scheme in ('https', 'http'):
            try:
                if get('{}://{}/v2/'.format(scheme, self.netloc), self.ca_file, self.auth,
                       timeout=1, client=self.client) == 200:
                    return scheme
            except (OSError, ssl.SSLError, ValueError):
                pass
        return None

    def run(self):
        while not self.halt.is_set():
            started = time.monotonic()
            scheme = self.once()
            self.samples.append((started, scheme is not None, scheme))
            self.halt.wait(max(0.0, 0.05 - (time.monotonic() - started)))

    def stop(self):
        self.halt.set()
        self.join(10)

    def outages(self, excluded):
        """[(start, end)] of unavailability, with the excluded windows cut out."""
        spans, start = [], None
        for t, ok, _ in self.samples:
            if not ok and start is None:
                start = t
            elif ok and start is not None:
                spans.append((start, t))
                start = None
        if start is not None:
            spans.append((start, self.samples[-1][0]))
        result = []
        for a, b in spans:
            pieces = [(a, b)]
            for ea, eb in excluded:
                pieces = [p for x, y in pieces for p in ((x, min(y, ea)), (max(x, eb), y))
                          if p[1] > p[0]]
            result += pieces
        return result


def flags_of(model):
    charm_dir = model.load()['units'][UNIT]['charm_dir']
    db = sqlite3.connect(os.path.join(charm_dir, '.unit-state.db'))
    try:
        return sorted(key[len('reactive.states.'):] for (key,) in db.execute(
            "SELECT key FROM kv WHERE key LIKE 'reactive.states.%'"))
    finally:
        db.close()


def machine_file(d, path):
    r = d.on_machine(UNIT, 'cat', path, check=False)
    return r.stdout if r.returncode == 0 else None


def machine_listing(d, path):
    r = d.on_machine(UNIT, 'find', path, '-mindepth', '1', check=False)
    return sorted(r.stdout.split()) if r.returncode == 0 else []


def container_facts(d):
    out = d.docker(UNIT, 'ps', '--all', '--format', '{{.Names}}')
    facts = {'names': sorted(out.split())}
    if 'registry' in facts['names']:
        info = json.loads(d.docker(UNIT, 'inspect', 'registry'))[0]
        facts.update(id=info['Id'], labels=info['Config']['Labels'] or {},
                     mounts={m['Destination']: m['Source'] for m in info['Mounts']})
    return facts


def held_packages():
    return set(subprocess.run(['apt-mark', 'showhold'], capture_output=True, text=True,
                              check=True).stdout.split())


def hook_failures(model):
    return [(hook, rc) for hook, rc in model.hooks_run(UNIT) if rc != 0]


# --- the switch ------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def old_charm():
    return existing_charm()


@pytest.fixture(scope='module')
def switch(old_charm, charm_path, juju_home, registry_image_archive, upstream_registry,
           small_corpus, tmp_path_factory):
    """The whole procedure, once; every test asserts one part of the outcome."""
    held_before = held_packages()
    tmp = tmp_path_factory.mktemp('switch')
    port, debug = free_port_pair()
    model = localjuju.Model(home=juju_home, name='sw-' + uuid.uuid4().hex[:8])
    d = Deployment(model)
    r = d
    try:
        # The existing charm, as a production deployment has it. It has no resource: its
        # image is in the engine already (an air-gapped unit's usual state).
        started = time.monotonic()
        model.deploy(old_charm, APP, config={'auth-basic-password': PASSWORD,
                                             'registry-port': port, 'debug-port': debug},
                     preload_image=str(registry_image_archive), publish_ports=True)
        model.integrate(APP + ':cert-provider', 'easyrsa')
        r.old_deploy_time = time.monotonic() - started
        r.address = d.address()
        r.netloc = '{}:{}'.format(r.address, port)
        r.port = port
        r.old_status = d.unit_status()
        r.ca_file = str(tmp / 'easyrsa-ca.crt')
        with open(r.ca_file, 'w') as f:
            f.write(model.remote_run('easyrsa', 'ca')['ca'])
        # With a CA from cert-provider the old charm sets http.tls.clientcas: clients must
        # present a certificate from that CA. The unit's own (serverAuth+clientAuth) serves,
        # as it does for the old charm's docker client (certs.d/<netloc>/client.cert).
        bag = relation_bag(model, 'cert-provider')
        r.certs_dir = tmp / 'certs'
        r.certs_dir.mkdir()
        (r.certs_dir / 'ca.crt').write_text(open(r.ca_file).read())
        (r.certs_dir / 'client.cert').write_text(bag['docker-registry_0.server.cert'])
        (r.certs_dir / 'client.key').write_text(bag['docker-registry_0.server.key'])
        os.chmod(str(r.certs_dir / 'client.key'), 0o600)
        r.client = (str(r.certs_dir / 'client.cert'), str(r.certs_dir / 'client.key'))
        r.authfile = write_authfile(tmp / 'auth.json', r.netloc, 'admin', PASSWORD)
        r.auth = ('admin', PASSWORD)
        wait_for(lambda: get('https://{}/v2/'.format(r.netloc), r.ca_file, r.auth,
                             client=r.client) == 200, 60, what='the old charm serving HTTPS')
        r.old_requires_client_cert = not _answers(r.netloc, r.ca_file, r.auth)
        r.expected = {}
        for repo in IMAGES:
            skopeo('copy', '--src-tls-verify=false', '--dest-cert-dir', str(r.certs_dir),
                   '--dest-authfile', r.authfile,
                   'docker://' + upstream_registry.ref(repo + ':1.0'),
                   'docker://{}/{}:1.0'.format(r.netloc, repo))
            r.expected[repo] = small_corpus.entry(repo).digest
        r.old = {'container': container_facts(d), 'flags': flags_of(model),
                 'htpasswd': machine_file(d, '/etc/docker/registry/htpasswd'),
                 'certs.d': machine_listing(d, '/etc/docker/certs.d'),
                 'registry dir': machine_listing(d, '/etc/docker/registry'),
                 'old cert': served_certificate(r.address, port)}

        # Juju refuses while cert-provider is related; nothing changes.
        with pytest.raises(LocalJujuError) as refused:
            model.refresh(APP, switch=charm_path)
        r.refused = str(refused.value)

        probe = r.probe = Probe(r.netloc, r.ca_file, r.auth, r.client)
        probe.start()
        time.sleep(1)
        t0 = time.monotonic()
        model.remove_relation(APP + ':cert-provider', 'easyrsa')
        wait_for(probe.once, 60, 0.05, 'the registry after remove-relation')
        r.tls_off = (t0, time.monotonic())
        r.between = {'container': container_facts(d), 'flags': flags_of(model),
                     'daemon.json': machine_file(d, '/etc/docker/daemon.json'),
                     'certs.d': machine_listing(d, '/etc/docker/certs.d'),
                     'registry dir': machine_listing(d, '/etc/docker/registry')}

        t1 = time.monotonic()
        model.refresh(APP, switch=charm_path)
        r.refresh_window = (t1, time.monotonic())
        r.after_refresh_status = d.unit_status()

        t2 = time.monotonic()
        model.integrate(APP + ':certificates', 'easyrsa:client')

        def new_cert_served():
            served = served_certificate(r.address, port)
            return served and served in relation_certificates(model, 'certificates') and served
        r.new_cert = wait_for(new_cert_served, 120, 0.05, 'the new relation\'s certificate')
        r.tls_on = (t2, time.monotonic())
        time.sleep(2)
        probe.stop()
        yield r
    finally:
        try:
            model.destroy()
        finally:
            # layer:docker holds docker.io; units share this host's dpkg.
            newly = held_packages() - held_before
            if newly:
                subprocess.run(['apt-mark', 'unhold'] + sorted(newly), capture_output=True)


def test_switch_is_refused_while_cert_provider_is_related(switch):
    assert 'cert-provider' in switch.refused and 'easyrsa' in switch.refused, switch.refused
    assert 'remove it first' in switch.refused
    assert switch.old['container']['names'] == ['registry']


def test_no_hook_failed(switch):
    assert hook_failures(switch.model) == [], switch.model.log(UNIT)[-5000:]
    hooks = [hook for hook, _ in switch.model.hooks_run(UNIT)]
    upgraded = hooks.index('upgrade-charm')
    assert hooks[upgraded + 1] == 'config-changed'


def test_active_over_https_with_the_new_relations_certificate(switch):
    status = switch.unit_status()
    assert status['current'] == 'active', status
    assert status['message'].startswith('Ready at {} (https'.format(switch.netloc)), status
    assert switch.new_cert in relation_certificates(switch.model, 'certificates')
    assert switch.new_cert != switch.old['old cert']
    assert served_certificate(switch.address, switch.port) == switch.new_cert
    # verified with the easyrsa CA, for the unit's address
    assert get('https://{}/v2/'.format(switch.netloc), switch.ca_file, switch.auth) == 200
    try:  # plain HTTP gets Go's 400 "Client sent an HTTP request to an HTTPS server"
        assert get('http://{}/v2/'.format(switch.netloc), auth=switch.auth) != 200
    except OSError:
        pass
    # relation-broken of cert-provider left no relation behind; certificates is the new one
    endpoints = [set(rel['endpoints']) for rel in switch.model.status()['relations']]
    assert {APP + ':certificates', 'easyrsa:client'} in endpoints
    assert not any(APP + ':cert-provider' in eps for eps in endpoints)


def test_the_same_password_is_required(switch):
    # the old charm also wanted a client certificate; ours does not (tls-client-auth=false),
    # and clients that present one still get in
    assert switch.old_requires_client_cert
    url = 'https://{}/v2/'.format(switch.netloc)
    assert get(url, switch.ca_file, switch.auth, client=switch.client) == 200
    assert get(url, switch.ca_file) == 401
    assert get(url, switch.ca_file, ('admin', 'wrong')) == 401
    assert get(url, switch.ca_file, switch.auth) == 200


def test_every_image_is_served_with_the_same_digest(switch, tmp_path):
    for repo, digest in switch.expected.items():
        out = skopeo('inspect', '--cert-dir', str(switch.certs_dir), '--authfile',
                     switch.authfile, '--raw', 'docker://{}/{}:1.0'.format(switch.netloc, repo))
        assert 'sha256:' + hashlib.sha256(out.stdout.encode()).hexdigest() == digest, repo
        pulled = skopeo('copy', '--src-cert-dir', str(switch.certs_dir), '--src-authfile',
                        switch.authfile, 'docker://{}/{}:1.0'.format(switch.netloc, repo),
                        'dir:' + str(tmp_path / repo.replace('/', '_')), check=False)
        assert pulled.returncode == 0, pulled.stderr


def test_unavailable_at_most_5s_outside_the_tls_steps(switch):
    probe = switch.probe
    assert probe.samples and probe.samples[0][0] < switch.tls_off[0]
    assert probe.samples[-1][0] > switch.tls_on[1]
    outages = probe.outages([switch.tls_off, switch.tls_on])
    total = sum(b - a for a, b in outages)
    print('switch: existing charm deployed with TLS in {:.0f}s; {} probes; unavailable '
          '{:.2f}s outside the TLS steps {}; TLS off step {:.1f}s, refresh {:.1f}s, TLS on '
          'step {:.1f}s'.format(
              switch.old_deploy_time, len(probe.samples), total,
              [(round(b - a, 2)) for a, b in outages],
              switch.tls_off[1] - switch.tls_off[0],
              switch.refresh_window[1] - switch.refresh_window[0],
              switch.tls_on[1] - switch.tls_on[0]))
    assert total <= DOWNTIME_BUDGET, (total, outages, switch.refresh_window)
    # during the refresh itself the registry answered over plain HTTP (no relation yet)
    during = [s for t, ok, s in probe.samples
              if switch.refresh_window[0] <= t <= switch.refresh_window[1] and ok]
    assert during and set(during) == {'http'}


def test_old_container_is_replaced_by_ours_on_the_same_data(switch):
    old, now = switch.between['container'], container_facts(switch)
    # the old charm's: no labels of ours
    assert not any(k.startswith('io.juju.docker-registry') for k in old['labels'])
    assert old['mounts']['/var/lib/registry'] == '/srv/registry'
    # ours, under the same name, on the same data; nothing else left running
    assert now['names'] == ['registry']
    assert now['id'] != old['id']
    assert now['labels'].get('io.juju.docker-registry.unit') == UNIT
    assert now['mounts']['/var/lib/registry'] == '/srv/registry'
    repos = machine_listing(switch, '/srv/registry/docker/registry/v2/repositories')
    for repo in IMAGES:
        assert '/srv/registry/docker/registry/v2/repositories/' + repo in repos


def test_old_htpasswd_is_adopted(switch):
    # `htpasswd -B` of the old charm still verifies the password: kept as it is, so every
    # client's credentials keep working
    assert switch.old['htpasswd'] and switch.old['htpasswd'].startswith('admin:$2')
    assert machine_file(switch, '/etc/docker/registry/htpasswd') == switch.old['htpasswd']


def test_old_tls_files_and_docker_client_entries_are_gone(switch):
    # The old charm's docker client entries for the registry's own address. (Other entries
    # may show through from the host's /etc, which the machine's /etc overlays.)
    own = '/etc/docker/certs.d/' + switch.netloc
    assert own + '/client.cert' in switch.old['certs.d'], switch.old['certs.d']
    left = machine_listing(switch, '/etc/docker/certs.d')
    assert [p for p in left if p == own or p.startswith(own + '/')] == [], left
    for name in ('registry.crt', 'registry.key', 'ca.crt', 'auth_token.pem'):
        assert machine_file(switch, '/etc/docker/registry/' + name) is None, name
    daemon = json.loads(machine_file(switch, '/etc/docker/daemon.json') or '{}')
    assert switch.netloc not in daemon.get('insecure-registries', [])
    assert machine_file(switch, '/usr/local/share/ca-certificates/juju-{}.crt'.format(APP)) \
        is None


def test_old_flags_are_cleared(switch):
    old = [f for f in switch.old['flags'] if f.startswith(OLD_FLAG_PREFIXES)]
    assert 'charm.docker-registry.configured' in old and 'docker.ready' in old
    now = flags_of(switch.model)
    assert [f for f in now if f.startswith(OLD_FLAG_PREFIXES)] == []
    assert 'registry.configured' in now and 'registry.tls.relation' in now
