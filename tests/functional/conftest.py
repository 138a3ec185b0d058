"""Fixtures for functional tests: the charm deployed through the local runner.

Every deployed unit runs on its own runner machine (private mount namespace, own dockerd,
own loopback address leased host-wide from 127.0.0.11 up), so tests see exactly what a Juju
unit would. The registry binds every address by default, so models that run at the same time
(this session's, or another developer's) must use different ports: take them from
free_port_pair().
Models live under a per-session LOCALJUJU_HOME and are destroyed after each test module.
"""
import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
import uuid

import pytest

import localjuju
from localjuju import machine as runner_machine
from tests.support.charm_build import built_charm
from tests.support.s3server import MotoS3Server
# registry_image_archive, upstream_registry, ...
from tests.support.fixtures import *  # noqa: F401,F403

APP = 'docker-registry'


@pytest.fixture(scope='session')
def juju_home():
    home = tempfile.mkdtemp(prefix='localjuju-', dir='/var/tmp')
    os.environ['LOCALJUJU_HOME'] = home
    yield home
    shutil.rmtree(home, ignore_errors=True)  # every model in it is destroyed by then


class Deployment:
    """A deployed model plus helpers that act on its units' machines."""

    def __init__(self, model):
        self.model = model

    def unit_status(self, unit=APP + '/0'):
        units = self.model.status()['applications'][APP]['units']
        return units[unit]['workload-status']

    def address(self, unit=APP + '/0'):
        return self.model.status()['applications'][APP]['units'][unit]['public-address']

    def holder_pid(self, unit=APP + '/0'):
        for machine in self.model.status()['machines'].values():
            if machine.get('unit') == unit:
                return machine['holder-pid']
        raise KeyError(unit)

    def on_machine(self, unit, *argv, check=True, timeout=120, **kwargs):
        """Run argv inside the unit's machine (its mount namespace, its docker engine)."""
        return runner_machine.ns_run(self.holder_pid(unit), argv, check=check, timeout=timeout,
                                     capture_output=True, text=True, **kwargs)

    def docker(self, unit, *args, check=True):
        return self.on_machine(unit, 'docker', *args, check=check).stdout

    def container_id(self, unit=APP + '/0', name='registry'):
        return self.docker(unit, 'inspect', '--format', '{{.Id}}', name).strip()

    def config(self, **values):
        """config(log_level='debug'): underscores become dashes, except in the
        nagios_* options whose names have underscores."""
        return self.model.config(APP, {k if k.startswith('nagios_') else k.replace('_', '-'): v
                                       for k, v in values.items()})

    def run(self, unit, action, **params):
        return self.model.run(unit, action, params)


@pytest.fixture(scope='session')
def charm_path():
    """The built charm (charm-tools with the upstream layers), current with the sources."""
    return built_charm()


@pytest.fixture(scope='session')
def deploy_factory(juju_home, registry_image_archive, charm_path):
    """deploy(config=..., n=1, resource=True, preload=False) -> Deployment (destroyed later)."""
    created = []

    def deploy(config=None, n=1, resource=True, preload=False):
        model = localjuju.Model(home=juju_home, name='t-' + uuid.uuid4().hex[:8])
        created.append(model)
        resources = {'registry-image': str(registry_image_archive)} if resource else None
        model.deploy(charm_path, APP, n=n, config=config or {}, resources=resources,
                     preload_image=str(registry_image_archive) if preload else None)
        return Deployment(model)

    yield deploy
    for model in created:
        model.destroy()


def port_free(port):
    """Nobody listens on port on any address (binding the wildcard would fail)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(('', port))
        except OSError:
            return False
    return True


_taken_ports = set()
_taken_lock = threading.Lock()


def free_port_pair(low=20000, high=30000):
    """(registry-port, debug-port): both free now and not handed out before in this session.
    Random, so that two sessions on one host rarely even try the same pair."""
    candidates = list(range(low, high, 2))
    random.shuffle(candidates)
    with _taken_lock:
        for port in candidates:
            if {port, port + 1} & _taken_ports:
                continue
            if port_free(port) and port_free(port + 1):
                _taken_ports.update((port, port + 1))
                return port, port + 1
    raise RuntimeError('no free port pair in {}-{}'.format(low, high))


def http_get(url, auth=None, timeout=5):
    """(status, body) of a GET; auth is (user, password)."""
    request = urllib.request.Request(url)
    if auth:
        import base64
        token = base64.b64encode('{}:{}'.format(*auth).encode()).decode()
        request.add_header('Authorization', 'Basic ' + token)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def catalog(netloc, auth=None):
    status, body = http_get('http://{}/v2/_catalog'.format(netloc), auth)
    assert status == 200, (status, body)
    return json.loads(body)['repositories']


def skopeo(*args, check=True):
    return subprocess.run(('skopeo',) + args, capture_output=True, text=True, check=check)


def pulled_digest(ref, *extra):
    """Pull every blob of ref with skopeo (it verifies their digests) and return the
    manifest digest. extra: more skopeo copy options (credentials, TLS)."""
    with tempfile.TemporaryDirectory() as out:
        pulled = skopeo('copy', '--src-tls-verify=false', *extra, 'docker://' + ref,
                        'dir:' + out, check=False)
        assert pulled.returncode == 0, pulled.stderr
        with open(os.path.join(out, 'manifest.json'), 'rb') as f:
            return 'sha256:' + hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope='module')
def s3():
    """A moto_server for the module (tests.support.s3server); tests make their buckets."""
    with MotoS3Server() as server:
        yield server
