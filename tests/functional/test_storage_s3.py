"""S3 storage through the local runner: two units share one bucket of a real S3-compatible
server (moto_server on loopback), which records every request it answers, so the tests see
how the registry signs them and which headers the storage-s3-* options put on them.

One two-unit deployment serves the module; the tests run in file order.
"""
import hashlib
import json
import urllib.error
import urllib.request

import pytest

from tests.support.clients import pulled_digest, skopeo
from tests.support.deployment import APP, free_port_pair

pytestmark = pytest.mark.functional

UNITS = (APP + '/0', APP + '/1')
BUCKET = 'registry-images'
ROOT = '/charm-registry'
SECRET_KEY = 'S3-secret/key+with: "yaml" #chars'
USER_AGENT = 'docker-registry-charm-functional'
ACL = 'bucket-owner-full-control'


def workload(d, unit):
    s = d.unit_status(unit)
    return s['current'], s['message']


def assert_ready(d):
    for unit in UNITS:
        state, message = workload(d, unit)
        assert state == 'active', d.model.status_history(unit)[-6:]
        assert message == 'Ready at {}:{} (http)'.format(d.address(unit), d.port), message


def netloc(d, unit):
    return '{}:{}'.format(d.address(unit), d.port)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def get_blob(netloc_, repo, digest):
    """(status, Location header, body) of a blob GET, redirects not followed."""
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open('http://{}/v2/{}/blobs/{}'.format(netloc_, repo, digest),
                         timeout=10) as response:
            return response.status, response.headers.get('Location'), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get('Location'), error.read()


def registry_requests(s3):
    """Recorded S3 requests signed with the charm's access key (not the test's listing)."""
    return [r for r in s3.requests() if 'AKIACHARMTEST' in r['headers'].get('authorization', '')]


@pytest.fixture(scope='module')
def d(deploy_factory, s3):
    s3.create_bucket(BUCKET)
    port, debug = free_port_pair()
    dep = deploy_factory(n=2, config={
        'registry-port': port, 'debug-port': debug, 'listen-on-unit-address': True,
        'storage-s3-bucket': BUCKET, 'storage-s3-region': 'us-east-1',
        'storage-s3-regionendpoint': s3.url, 'storage-s3-accesskey': 'AKIACHARMTEST',
        'storage-s3-secretkey': SECRET_KEY, 'storage-s3-rootdirectory': ROOT,
        'storage-s3-skip-v4-auth': False, 'storage-s3-objectacl': ACL,
        'storage-s3-useragent': USER_AGENT})
    dep.port = port
    yield dep
    dep.model.destroy()


def test_image_pushed_to_one_unit_is_served_by_the_other(d, s3, upstream_registry,
                                                         small_corpus):
    assert_ready(d)
    expected = small_corpus.entry('test/app-a').digest
    skopeo('copy', '--src-tls-verify=false', '--dest-tls-verify=false',
           'docker://' + upstream_registry.ref('test/app-a:1.0'),
           'docker://{}/s3/app-a:1.0'.format(netloc(d, UNITS[0])))
    assert pulled_digest('{}/s3/app-a:1.0'.format(netloc(d, UNITS[1]))) == expected

    keys = s3.keys(BUCKET, prefix=ROOT.lstrip('/') + '/docker/registry/v2/')
    blobs = {k.split('/')[-2] for k in keys if k.endswith('/data') and '/blobs/' in k}
    entry = small_corpus.entry('test/app-a')
    assert {b.split(':')[1] for b in entry.blobs} <= blobs
    # nothing on the units' disks: object storage replaces the data directory
    for unit in UNITS:
        listing = d.on_machine(unit, 'find', '/srv/registry', '-type', 'f').stdout
        assert listing.strip() == '', listing


def test_requests_signed_v4_with_the_object_acl(d, s3):
    requests = registry_requests(s3)
    assert requests
    # (storage-s3-useragent is not checked here: registry 2.8 appends it as a second
    # User-Agent value, and moto's recorder keeps only the first)
    assert all(r['headers']['authorization'].startswith('AWS4-HMAC-SHA256 Credential='
                                                       'AKIACHARMTEST/')
               for r in requests)
    writes = [r for r in requests if r['method'] == 'PUT' and 'uploadId=' not in r['url']
              or r['method'] == 'POST' and r['url'].endswith('?uploads')]
    assert writes
    assert {r['headers'].get('x-amz-acl') for r in writes} == {ACL}


def test_secret_key_stays_private(d):
    assert SECRET_KEY not in json.dumps(d.model.status())
    for unit in UNITS:
        assert SECRET_KEY not in d.docker(unit, 'inspect', 'registry')
        assert SECRET_KEY not in d.model.log(unit)
        mode = d.on_machine(unit, 'stat', '-c', '%a', '/etc/docker/registry/config.yml').stdout
        assert mode.strip() == '600'


def test_redirects_to_storage_only_when_enabled(d, s3, small_corpus):
    blob = small_corpus.entry('test/app-a').blobs[-1]
    status, location, body = get_blob(netloc(d, UNITS[0]), 's3/app-a', blob)
    assert status == 200 and location is None
    assert 'sha256:' + hashlib.sha256(body).hexdigest() == blob
    d.config(storage_redirect_disable=False)
    try:
        assert_ready(d)
        status, location, _ = get_blob(netloc(d, UNITS[1]), 's3/app-a', blob)
        assert status == 307, status
        assert location.startswith('{}/{}/'.format(s3.url, BUCKET)), location
        with urllib.request.urlopen(location, timeout=10) as response:
            assert 'sha256:' + hashlib.sha256(response.read()).hexdigest() == blob
    finally:
        d.model.config(APP, reset=['storage-redirect-disable'])
    assert_ready(d)


def test_signature_v2_after_recreation_keeps_the_images(d, s3, small_corpus):
    before = {unit: d.container_id(unit) for unit in UNITS}
    d.config(storage_s3_skip_v4_auth=True)
    try:
        assert_ready(d)
        assert all(d.container_id(unit) != before[unit] for unit in UNITS)
        s3.reset_recording()
        expected = small_corpus.entry('test/app-a').digest
        for unit in UNITS:
            assert pulled_digest('{}/s3/app-a:1.0'.format(netloc(d, unit))) == expected
        requests = registry_requests(s3)
        assert requests, [(r['method'], r['headers']) for r in s3.requests()][:3]
        assert all(r['headers']['authorization'].startswith('AWS AKIACHARMTEST:')
                   for r in requests)
    finally:
        d.config(storage_s3_skip_v4_auth=False)
    assert_ready(d)
