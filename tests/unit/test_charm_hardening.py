"""Hostile or careless option values: a clear problem naming the option, never a traceback,
and nothing that leaks or listens where it should not (issue 12's config-side findings)."""
from unittest import mock

import pytest

from charms.layer import registry_config, registry_juju, registry_relations
from charms.layer.registry_validation import normalize, validate
from tests.support.registry_testlib import UNIT_ADDRESS, run, with_options


def problems(config):
    return [(p.option, p.message) for p in validate(config)]


@pytest.mark.parametrize('option', ['http-host', 'cache-remoteurl', 'registry-http-proxy',
                                    'registry-https-proxy', 'auth-token-realm',
                                    'storage-s3-regionendpoint', 'storage-swift-authurl'])
def test_an_unclosed_ipv6_bracket_is_a_problem_not_a_traceback(option):
    extra = {'storage-s3-bucket': 'b', 'storage-s3-region': 'r'} \
        if option.startswith('storage-s3') else {}
    found = problems(with_options(extra, **{option: 'http://[::1'}))
    assert (option, 'is not a valid URL') in found, found


def test_a_huge_url_is_refused_before_it_reaches_the_status():
    found = problems(with_options({'http-host': 'https://' + 'a' * 100000 + '/'}))
    assert found == [('http-host', 'is longer than 2048 characters')]
    found = problems(with_options({'http-host': 'https://' + 'a' * 300 + '.com/'}))
    assert found == [('http-host', 'host name is longer than 253 characters')]


@pytest.mark.parametrize('user,message', [
    ('ad\tmin', 'must not contain spaces or control characters'),
    ('ad min', 'must not contain spaces or control characters'),
    ('a\x00', 'must not contain spaces or control characters'),
    ('a' * 256, 'is longer than 255 characters'),
])
def test_bad_basic_auth_users(user, message):
    config = with_options({'auth-basic-user': user, 'auth-basic-password': 'pw'})
    assert ('auth-basic-user', message) in problems(config)


@pytest.mark.parametrize('password', ['x' * 73, 'é' * 37, 'x' * 100000])
def test_passwords_bcrypt_would_cut_are_refused(password):
    config = with_options({'auth-basic-password': password})
    assert problems(config) == [('auth-basic-password',
                                 'is longer than 72 bytes, which bcrypt would ignore')]


def test_a_72_byte_password_is_fine():
    assert problems(with_options({'auth-basic-password': 'x' * 72})) == []


@pytest.mark.parametrize('days', [36501, 1000000000])
def test_absurd_expiry_warning_days(days):
    assert problems(with_options({'tls-expiry-warning-days': days})) == [
        ('tls-expiry-warning-days', 'must be from 0 to 36500')]


def test_a_whitespace_only_password_is_no_password_anywhere():
    config = normalize(with_options({'auth-basic-password': '  \t ',
                                     'auth-token-realm': 'https://auth.example.com/token',
                                     'auth-token-service': 's', 'auth-token-issuer': 'i',
                                     'auth-token-root-certs': 'eA=='}))
    assert config['auth-basic-password'] == ''
    r = run(config)
    assert 'token' in r.registry['auth'] and 'htpasswd' not in r.registry['auth']
    payload = registry_relations.client_payload('h:5000', False, None, 'admin',
                                                config['auth-basic-password'])
    assert payload['basic_password'] is None


@pytest.mark.parametrize('url', ['https://user:pw@up.example.com', 'https://tok@up.example.com'])
def test_cache_remoteurl_credentials_are_refused(url):
    assert problems(with_options({'cache-remoteurl': url}))[0][0] == 'cache-remoteurl'


# --- IPv6 ------------------------------------------------------------------------------------

V6 = 'fd00::1'


def test_ipv6_addresses_are_bracketed(hookenv):
    assert registry_config.host_port(V6, 5000) == '[fd00::1]:5000'
    assert registry_config.host_port('', 5000) == ':5000'
    assert registry_config.host_port('198.51.100.1', 5000) == '198.51.100.1:5000'
    with mock.patch.object(registry_juju, 'unit_address', return_value=V6):
        facts = registry_juju.facts(with_options({'listen-on-unit-address': True,
                                                  'prometheus-metrics': True}), None)
        context = registry_config.registry_context(
            with_options({'prometheus-metrics': True}), facts)
        assert context['listen_addr'] == '[fd00::1]:5000'
        assert context['debug_addr'] == '[fd00::1]:5001'
        config = with_options({'listen-on-unit-address': True})
        assert registry_juju.local_url(config, None) == 'http://[fd00::1]:5000'
        with mock.patch.object(registry_juju, 'proxy_addresses', return_value=[]):
            assert registry_juju.client_netloc(config) == '[fd00::1]:5000'
    assert registry_juju.client_netloc(with_options({'http-host': 'https://[fd00::2]:8443/'})) \
        == '[fd00::2]:8443'


def test_bridge_mode_publishes_ipv6_in_brackets():
    from charms.layer import registry_container
    spec = registry_container.container_spec(
        with_options({'container-network': 'bridge', 'prometheus-metrics': True}),
        'u/0', 'sha256:' + 'a' * 64, None, [], '/env', {}, V6, V6)
    assert '[fd00::1]:5000:5000' in spec.args and '[fd00::1]:5001:5001' in spec.args


# --- haproxy with client certificates ------------------------------------------------------

def test_haproxy_checks_without_a_client_certificate_when_the_units_require_one():
    # haproxy has no client certificate (giving it the unit's key would hand out a key that
    # opens the registry): a TLS or HTTP check would fail the handshake and mark every
    # server DOWN, so it checks that the port accepts connections.
    [service] = registry_relations.proxy_services(
        'docker-registry', [('docker-registry/0', '198.51.100.1')], 5000, True, True,
        client_auth=True)
    for server in service['servers']:
        assert 'check-ssl' not in server[3] and 'check' in server[3].split()
    assert not any('httpchk' in option or 'http-check' in option
                   for option in service['service_options'])
    [plain] = registry_relations.proxy_services(
        'docker-registry', [('docker-registry/0', '198.51.100.1')], 5000, True, True)
    assert 'check-ssl verify none' in plain['servers'][0][3]
    assert 'option httpchk GET /v2/' in plain['service_options']


# --- basic auth over plain HTTP ----------------------------------------------------------------

def test_basic_auth_over_plain_http_warns_in_the_status(hookenv, fake_docker):
    # Policy: warn, not block; blocking would keep the previous (maybe password-less)
    # configuration serving.
    config = with_options({'auth-basic-password': 'pw'})
    message = registry_juju.ready_message(config, None)
    assert message.startswith('Ready at {}:5000 (http); '.format(UNIT_ADDRESS))
    assert 'WARNING: basic auth over plain HTTP sends the password in clear' in message
    assert 'basic auth' not in registry_juju.ready_message(with_options(), None)
