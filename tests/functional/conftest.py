"""Fixtures for functional tests: the charm deployed through the local runner
(tests.support.deployment). Models live under a per-session LOCALJUJU_HOME and are destroyed
after each test module."""
import os
import shutil
import tempfile
import uuid

import pytest

import localjuju
from tests.support.clients import skopeo
from tests.support.deployment import APP, Deployment, free_port_pair
from tests.support.s3server import MotoS3Server
# charm_path, registry_image_archive, upstream_registry, ...
from tests.support.fixtures import *  # noqa: F401,F403


@pytest.fixture(scope='session')
def juju_home():
    home = tempfile.mkdtemp(prefix='localjuju-', dir='/var/tmp')
    os.environ['LOCALJUJU_HOME'] = home
    yield home
    shutil.rmtree(home, ignore_errors=True)  # every model in it is destroyed by then


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


@pytest.fixture(scope='session')
def seeded_deploy(deploy_factory, small_corpus):
    """seeded_deploy(upstream, repo) -> a one-unit Deployment on free ports, active and Ready,
    serving upstream's test/base:1.0 as <netloc>/<repo>/seed:1.0. Its attributes: port,
    debug_port, netloc, ready (the Ready message), seed_ref and seed_digest."""
    def deploy(upstream, repo):
        port, debug = free_port_pair()
        d = deploy_factory(config={'registry-port': port, 'debug-port': debug})
        d.port, d.debug_port = port, debug
        d.netloc = '{}:{}'.format(d.address(), port)
        d.ready = 'Ready at {} (http)'.format(d.netloc)
        d.seed_ref = '{}/{}/seed:1.0'.format(d.netloc, repo)
        d.seed_digest = small_corpus.entry('test/base').digest
        status = d.unit_status()
        assert (status['current'], status['message']) == ('active', d.ready), \
            d.model.status_history(APP + '/0')
        skopeo('copy', '--src-tls-verify=false', '--dest-tls-verify=false',
               'docker://' + upstream.ref('test/base:1.0'), 'docker://' + d.seed_ref)
        return d
    return deploy


@pytest.fixture(scope='module')
def s3():
    """A moto_server for the module (tests.support.s3server); tests make their buckets."""
    with MotoS3Server() as server:
        yield server
