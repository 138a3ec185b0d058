"""Values with YAML syntax in them reach the registry unchanged (rendered, then safe_load)."""
import copy

import pytest
from passlib.apache import HtpasswdFile

from charms.layer import registry_paths
from tests.support.registry_testlib import CA_PEM, DEFAULT_REGISTRY, b64, run, with_options

NASTY = 'a: b # c \' d " {e} [f] &g *h !i %j |k >l @m `n\nsecond: line\t\\end'

TOKEN = {'auth-token-realm': 'https://auth.example.com/token/',
         'auth-token-service': 'registry', 'auth-token-issuer': 'issuer',
         'auth-token-root-certs': b64(CA_PEM)}
TOKEN_ROOT = '/etc/docker/registry/token-root-certs.pem'


def expected(**changes):
    """DEFAULT_REGISTRY with top-level/nested replacements given as dotted paths."""
    result = copy.deepcopy(DEFAULT_REGISTRY)
    for dotted, value in changes.items():
        node = result
        parts = dotted.split('__')
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    return result


def token(**override):
    values = {'realm': TOKEN['auth-token-realm'], 'service': 'registry', 'issuer': 'issuer',
              'rootcertbundle': TOKEN_ROOT}
    values.update(override)
    return {'token': values}


SWIFT_BASE = {'storage-swift-authurl': 'https://keystone.example.com/v3',
              'storage-swift-username': 'u', 'storage-swift-password': 'p'}
S3_BASE = {'storage-s3-bucket': 'b', 'storage-s3-region': 'r',
           'storage-s3-accesskey': 'ak', 'storage-s3-secretkey': 'sk'}
S3_PARAMS = {'bucket': 'b', 'region': 'r', 'accesskey': 'ak', 'forcepathstyle': False,
             'encrypt': False, 'secure': True, 'skipverify': False, 'v4auth': True,
             'chunksize': 10485760, 'multipartcopychunksize': 33554432,
             'multipartcopymaxconcurrency': 100, 'multipartcopythresholdsize': 33554432,
             'storageclass': 'STANDARD', 'usedualstack': False, 'accelerate': False,
             'objectacl': 'private', 'loglevel': 'off'}

CASES = {
    'auth-basic-password': ({}, expected(auth={'htpasswd': {
        'realm': 'Docker Registry', 'path': '/etc/docker/registry/htpasswd'}})),
    'auth-token-realm': (TOKEN, expected(auth=token(realm=NASTY))),
    'auth-token-service': (TOKEN, expected(auth=token(service=NASTY))),
    'auth-token-issuer': (TOKEN, expected(auth=token(issuer=NASTY))),
    'http-host': ({}, expected(http__host=NASTY)),
    'cache-remoteurl': ({}, expected(proxy={'remoteurl': NASTY})),
    'cache-username': ({'cache-remoteurl': 'https://up.example.com', 'cache-password': 'pw'},
                       expected(proxy={'remoteurl': 'https://up.example.com',
                                       'username': NASTY, 'password': 'pw'})),
    'cache-password': ({'cache-remoteurl': 'https://up.example.com', 'cache-username': 'u'},
                       expected(proxy={'remoteurl': 'https://up.example.com',
                                       'username': 'u', 'password': NASTY})),
    'storage-swift-password': (SWIFT_BASE, expected(storage__filesystem=None, storage__swift={
        'authurl': 'https://keystone.example.com/v3', 'username': 'u', 'password': NASTY,
        'container': 'docker-registry'})),
    'storage-s3-secretkey': (S3_BASE, expected(storage__filesystem=None,
                                               storage__s3=dict(S3_PARAMS, secretkey=NASTY))),
}


@pytest.mark.parametrize('option', sorted(CASES))
def test_value_with_yaml_syntax_survives_rendering(option):
    base, wanted = CASES[option]
    r = run(with_options(base, **{option: NASTY}))
    assert r.registry == wanted
    # the document is exactly one mapping: nothing leaked into extra keys
    assert sorted(r.registry) == sorted(wanted)


def test_password_with_yaml_syntax_still_verifies_in_htpasswd():
    r = run(with_options({'auth-basic-password': NASTY}))
    entry = HtpasswdFile.from_string(r.files[registry_paths.HOST_HTPASSWD].content)
    assert entry.check_password('admin', NASTY)
    assert NASTY.encode() not in r.files[registry_paths.HOST_CONFIG].content


def test_http_secret_with_yaml_syntax_survives():
    r = run(with_options(), leader_secret=NASTY)
    assert r.registry['http']['secret'] == NASTY


def test_non_ascii_values_survive():
    value = 'pässwörd ✓ \u2028'
    r = run(with_options({'cache-remoteurl': 'https://up.example.com', 'cache-username': 'u',
                          'cache-password': value}))
    assert r.registry['proxy']['password'] == value
