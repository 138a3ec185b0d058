"""Transactional reconfiguration on a real registry: values the charm's validation lets
through but the registry refuses at start never take the last good configuration down.

For each refused value, a probe GETs /v2/ every 50 ms from before the change until after
the value is reset. The registry must answer before and after, and it may only miss
answers in the one window in which the new container tries to start on the same port
(measured and bounded). The unit blocks with the registry's own error line naming the
option, secrets removed. The old container (same id) serves the same images. update-status
does not try the refused configuration again, and resetting the value brings back Ready
without another restart.
"""
import base64
import json
import time

import pytest

from tests.support.clients import pulled_digest
from tests.support.deployment import APP
from tests.support.probe import Prober, http_check

pytestmark = pytest.mark.functional

UNIT = APP + '/0'
S3_SECRET = 'S3-secret/key-never-shown'
# The longest the port may go unanswered while a refused container tries to start: its
# start, the registry's exit, the old container's start.
MAX_SWITCH_SECONDS = 10


def b64(data):
    return base64.b64encode(data).decode()


def workload(d):
    s = d.unit_status(UNIT)
    return s['current'], s['message']


def state(d, name='registry'):
    out = d.docker(UNIT, 'inspect', '--format', '{{json .State}}', name, check=False)
    return json.loads(out) if out.strip() else None


@pytest.fixture(scope='module')
def reg(seeded_deploy, upstream_registry, test_ca):
    d = seeded_deploy(upstream_registry, 'tx')
    server = test_ca.server_cert('tx-server', [d.address()])
    d.tls_blobs = {'tls-cert-blob': b64(server.cert.read_bytes()),
                   'tls-key-blob': b64(server.key.read_bytes()),
                   'tls-ca-blob': b64(test_ca.cert.read_bytes())}
    yield d
    d.model.destroy()


NOT_A_CERT = b'-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n'
BROKEN_BODY = b'-----BEGIN CERTIFICATE-----\nMIIB!!broken*body\n-----END CERTIFICATE-----\n'


REFUSED = 'Registry refused the new configuration'
INVALID = 'Invalid config: '


def refused_values(d):
    """{case: (options, option the status must name, how the status starts)}

    The broken client CA is the charm's to catch: the unit's own client certificate follows
    it in the bundle, so the registry's PEM reader would skip the broken block, start, and
    trust only the unit.
    """
    return {
        's3-region': ({'storage-s3-bucket': 'images', 'storage-s3-region': 'nowhere-1',
                       'storage-s3-accesskey': 'AKIATXTEST', 'storage-s3-secretkey': S3_SECRET},
                      'storage-s3-region', REFUSED),
        'token-root-certs': ({'auth-token-realm': 'https://auth.example.com/token',
                              'auth-token-service': 'registry',
                              'auth-token-issuer': 'auth.example.com',
                              'auth-token-root-certs': b64(NOT_A_CERT)},
                             'auth-token-root-certs', REFUSED),
        'tls-client-ca-blob': (dict(d.tls_blobs, **{'tls-client-auth': True,
                                                    'tls-client-ca-blob': b64(BROKEN_BODY)}),
                               'tls-client-ca-blob', INVALID),
        'cache-remoteurl': ({'cache-remoteurl': 'http://127.0.0.1:1'}, 'cache-remoteurl',
                            REFUSED),
    }


@pytest.mark.parametrize('case', ['s3-region', 'token-root-certs', 'tls-client-ca-blob',
                                  'cache-remoteurl'])
def test_a_refused_value_leaves_the_last_good_configuration_serving(reg, case):
    d = reg
    bad, option, prefix = refused_values(d)[case]
    before = d.container_id()
    log_mark = len(d.model.log(UNIT))
    host, port = d.netloc.rsplit(':', 1)
    # GET /v2/ every 50 ms; only the registry itself counts as serving.
    with Prober(http_check(host, int(port), up=(200, 401), registry=True, timeout=1),
                interval=0.05) as probe:
        time.sleep(0.5)
        d.model.config(APP, bad)
        try:
            status, message = workload(d)
            assert status == 'blocked', (status, message, d.model.status_history(UNIT)[-6:])
            assert message.startswith(prefix), message
            assert option in message, message
            if prefix == REFUSED:
                assert message.endswith('the last good configuration still serves'), message
            # The same container, running its old configuration, serves the same images.
            assert d.container_id() == before
            running = state(d)
            assert running['Running'] and not running['Restarting'], running
            assert state(d, 'registry-previous') is None and state(d, 'registry-next') is None
            assert pulled_digest(d.seed_ref) == d.seed_digest

            # Not retried: update-status leaves the container (and its start time) alone.
            started = running['StartedAt']
            d.model.update_status()
            assert workload(d) == (status, message)
            assert d.container_id() == before and state(d)['StartedAt'] == started
        finally:
            d.model.config(APP, reset=list(bad))
        assert workload(d) == ('active', d.ready), d.model.status_history(UNIT)[-6:]
        assert d.container_id() == before
        assert state(d)['StartedAt'] == started, 'restarted on the configuration it runs'
        time.sleep(0.5)
    assert pulled_digest(d.seed_ref) == d.seed_digest

    outages = probe.outages()
    print('{}: {} probes, outages {}'.format(case, len(probe.results),
                                             [round(s, 2) for _, s in outages]))
    assert probe.results[0][1] and probe.results[-1][1]
    assert len(outages) <= 1, outages  # only while the refused container tried the port
    assert all(seconds <= MAX_SWITCH_SECONDS for _, seconds in outages), outages

    log = d.model.log(UNIT)[log_mark:]
    assert 'Traceback' not in log
    everything = log + json.dumps(d.model.status_history(UNIT))
    assert S3_SECRET not in everything
