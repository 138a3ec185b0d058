"""What the charm publishes on its relations (pure functions) and where registry_juju gets
the facts (relations mocked)."""
from unittest import mock

import pytest

from charms.layer import registry_relations, registry_juju
from tests.support.registry_testlib import with_options

PLUGINS = '/usr/lib/nagios/plugins/'


# --- docker-registry --------------------------------------------------------------------------

def test_client_payload_with_tls_and_auth():
    assert registry_relations.client_payload('198.51.100.9:5000', True, 'PEM', 'admin', 'pw') == {
        'registry_netloc': '198.51.100.9:5000', 'registry_url': 'https://198.51.100.9:5000',
        'basic_user': 'admin', 'basic_password': 'pw', 'tls_ca': 'PEM'}


def test_client_payload_without_tls_or_auth_says_null():
    # The user name has a default: without a password there is no auth to tell about.
    assert registry_relations.client_payload('198.51.100.9:5000', False, None, 'admin', '') == {
        'registry_netloc': '198.51.100.9:5000', 'registry_url': 'http://198.51.100.9:5000',
        'basic_user': None, 'basic_password': None, 'tls_ca': None}


# --- website ------------------------------------------------------------------------------------

UNITS = [('docker-registry/10', '198.51.100.10'), ('docker-registry/2', '198.51.100.2'),
         ('docker-registry/1', '198.51.100.1')]


def test_shared_storage_balances_every_unit():
    [service] = registry_relations.proxy_services('docker-registry', UNITS, 5000, True, False)
    assert service['service_name'] == 'docker-registry'
    assert (service['service_host'], service['service_port']) == ('0.0.0.0', 5000)
    assert service['service_options'] == [
        'mode tcp', 'balance leastconn', 'option redispatch', 'option httpchk GET /v2/',
        'http-check expect rstatus ^(200|401)$']
    assert service['servers'] == [
        ['docker-registry-1', '198.51.100.1', 5000, 'check inter 2s rise 2 fall 2'],
        ['docker-registry-2', '198.51.100.2', 5000, 'check inter 2s rise 2 fall 2'],
        ['docker-registry-10', '198.51.100.10', 5000, 'check inter 2s rise 2 fall 2']]


def test_filesystem_storage_has_one_active_unit_and_numeric_backups():
    # Unit 10 sorts after unit 2 (the old charm sorted "/10" before "/2").
    [service] = registry_relations.proxy_services('docker-registry', UNITS, 5000, False, True)
    assert [(s[0], s[3]) for s in service['servers']] == [
        ('docker-registry-1', 'check inter 2s rise 2 fall 2 check-ssl verify none'),
        ('docker-registry-2', 'check inter 2s rise 2 fall 2 check-ssl verify none backup'),
        ('docker-registry-10', 'check inter 2s rise 2 fall 2 check-ssl verify none backup')]


@pytest.mark.parametrize('unit, shared, note', [
    ('docker-registry/2', True, 'load-balanced with 3 unit(s) behind the reverse proxy'),
    ('docker-registry/1', False,
     'active server behind the reverse proxy (filesystem storage: one active unit)'),
    ('docker-registry/10', False, 'backup server behind the reverse proxy (filesystem '
     'storage: docker-registry/1 is active)'),
])
def test_proxy_role(unit, shared, note):
    names = [name for name, _ in UNITS]
    assert registry_relations.proxy_role(unit, names, shared) == note


# --- nrpe -------------------------------------------------------------------------------------

def test_nrpe_checks_with_tls_on_filesystem_storage():
    checks = registry_relations.nrpe_checks('docker-registry/0', '198.51.100.1', 5000, True, False,
                                            '/srv/registry', 30)
    assert [(c.name, c.args) for c in checks] == [
        ('docker_registry_http', [PLUGINS + 'check_http', '-I', '198.51.100.1', '-p', '5000',
                                  '-u', '/v2/', '-e', '200,401', '--ssl']),
        ('docker_registry_certificate', [PLUGINS + 'check_http', '-I', '198.51.100.1', '-p',
                                         '5000', '--ssl', '-C', '30,10']),
        ('docker_registry_disk', [PLUGINS + 'check_disk', '-w', '10%', '-c', '5%', '-p',
                                  '/srv/registry'])]


def test_nrpe_checks_without_tls_on_object_storage():
    checks = registry_relations.nrpe_checks('docker-registry/0', '127.0.0.1', 5000, False,
                                            False, None, 30)
    assert [c.name for c in checks] == ['docker_registry_http']
    assert '--ssl' not in checks[0].args


def test_with_client_certificates_required_the_check_only_shakes_hands():
    checks = registry_relations.nrpe_checks('docker-registry/0', '198.51.100.1', 5000, True, True,
                                            None, 30)
    assert checks[0].args == [PLUGINS + 'check_tcp', '-H', '198.51.100.1', '-p', '5000', '--ssl']


# --- facts from the relations -------------------------------------------------------------------

def relation_data(data):
    """hookenv.relation_ids/related_units/relation_get answering from {rid: {unit: bag}}."""
    return {
        'relation_ids': lambda endpoint: [r for r in data if r.startswith(endpoint + ':')],
        'related_units': lambda rid: sorted(data[rid]),
        'relation_get': lambda rid, unit: data[rid][unit],
    }


def test_the_client_address_is_the_lowest_proxy_address_with_the_registry_port(hookenv):
    answers = relation_data({'website:3': {'haproxy/0': {'private-address': '198.51.100.30'},
                                           'haproxy/1': {'ingress-address': '198.51.100.4'}}})
    with mock.patch.multiple(registry_juju.hookenv, **answers):
        assert registry_juju.client_netloc(with_options({})) == '198.51.100.4:5000'
        assert registry_juju.client_netloc(with_options(
            {'http-host': 'https://registry.example.com/'})) == 'registry.example.com:443'


def test_registry_units_are_this_one_and_its_peers(hookenv):
    answers = relation_data({'peer:1': {'docker-registry/1': {'ingress-address': '198.51.100.8'},
                                        'docker-registry/2': {}}})
    with mock.patch.multiple(registry_juju.hookenv, **answers):
        assert registry_juju.registry_units() == [
            ('docker-registry/0', hookenv['network_get'].return_value['ingress-addresses'][0]),
            ('docker-registry/1', '198.51.100.8')]
