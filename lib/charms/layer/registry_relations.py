"""What the charm tells related applications: pure functions from facts to payloads.

  client_payload   the docker-registry relation (containerd, docker): how to reach and trust
                   the registry.
  proxy_services   the website relation (haproxy reverseproxy): one service listing every
                   registry unit, balanced or active/backup depending on the storage.
  proxy_role       what the status says about a unit behind the proxy.
  nrpe_checks      the nrpe-external-master checks.
"""
from collections import namedtuple

from charms.layer import registry_paths as paths

# A Nagios check: nrpe command name, description and the command line's arguments.
NrpeCheck = namedtuple('NrpeCheck', 'name description args')
# haproxy's health check: the registry's API root answers 200, or 401 with auth on.
HEALTH_CHECK_OPTIONS = ['option httpchk GET /v2/', 'http-check expect rstatus ^(200|401)$']


def client_payload(netloc, tls, tls_ca, basic_user, basic_password):
    """The docker-registry relation's keys (values are JSON-encoded by the interface).

    tls: whether the registry serves HTTPS; tls_ca: PEM text of its CA, or None.
    """
    with_auth = bool(basic_user and basic_password)
    return {
        'registry_netloc': netloc,
        'registry_url': '{}://{}'.format('https' if tls else 'http', netloc),
        'basic_user': basic_user if with_auth else None,
        'basic_password': basic_password if with_auth else None,
        'tls_ca': tls_ca if tls else None,
    }


def unit_number(unit_name):
    return int(unit_name.rsplit('/', 1)[1])


def proxy_services(service_name, units, port, shared_storage, tls, client_auth=False):
    """The `services` list for haproxy: every unit of units [(unit name, address)].

    TCP mode passes TLS through to the units, whose certificates name the proxy's address;
    the health check speaks TLS itself when the units do (no CA file on the proxy: the
    check verifies that a registry answers, clients verify the certificate). When the units
    require client certificates (client_auth) the proxy has none to present (handing it
    the unit's key would spread a credential that opens the registry), so the check only
    connects to the port, as the nrpe check does. A connection a unit refuses (it stopped,
    and the check has not noticed yet) is retried on another unit (redispatch), and the check
    runs every 2 s so that a unit going away is out within 4 s. With shared storage every
    unit serves; with per-unit filesystem storage only the lowest-numbered unit does and the
    others wait as backups, in unit order.
    """
    check = 'check inter 2s rise 2 fall 2' + (' check-ssl verify none'
                                               if tls and not client_auth else '')
    health = [] if client_auth else HEALTH_CHECK_OPTIONS
    servers = []
    for index, (unit, address) in enumerate(sorted(units, key=lambda u: unit_number(u[0]))):
        backup = '' if shared_storage or index == 0 else ' backup'
        servers.append([unit.replace('/', '-'), address, port, check + backup])
    return [{'service_name': service_name, 'service_host': '0.0.0.0', 'service_port': port,
             'service_options': ['mode tcp', 'balance leastconn', 'option redispatch'] + health,
             'servers': servers}]


def proxy_role(unit, units, shared_storage):
    """Status note for unit behind the reverse proxy; units: every registry unit's name."""
    if shared_storage:
        return 'load-balanced with {} unit(s) behind the reverse proxy'.format(len(units))
    first = min(units, key=unit_number)
    if unit == first:
        return 'active server behind the reverse proxy (filesystem storage: one active unit)'
    return 'backup server behind the reverse proxy (filesystem storage: {} is active)'.format(
        first)


def nrpe_checks(unit, address, port, tls, client_auth, data_dir, expiry_days):
    """Checks that work with TLS and auth on: the API root (200 or 401), the certificate's
    expiry with TLS, and free space where the unit keeps image data (None: object storage).

    With client certificates required (client_auth) the API cannot be asked without one,
    and the nagios user may not read the unit's key: the check then only completes a TLS
    handshake on the port.
    """
    prefix = 'docker_registry_'
    if client_auth:
        checks = [NrpeCheck(prefix + 'http', 'Registry on {} accepts TLS'.format(unit),
                            [paths.NAGIOS_PLUGINS + '/check_tcp', '-H', address, '-p', str(port),
                             '--ssl'])]
    else:
        http = [paths.NAGIOS_PLUGINS + '/check_http', '-I', address, '-p', str(port), '-u',
                '/v2/', '-e', '200,401']
        checks = [NrpeCheck(prefix + 'http', 'Registry API on {} answers'.format(unit),
                            http + (['--ssl'] if tls else []))]
    if tls:
        checks.append(NrpeCheck(
            prefix + 'certificate', 'Registry TLS certificate of {} is not expiring'.format(unit),
            [paths.NAGIOS_PLUGINS + '/check_http', '-I', address, '-p', str(port), '--ssl',
             '-C', '{},{}'.format(max(expiry_days, 1), max(expiry_days // 3, 1))]))
    if data_dir:
        checks.append(NrpeCheck(
            prefix + 'disk', 'Free space for registry images on {}'.format(unit),
            [paths.NAGIOS_PLUGINS + '/check_disk', '-w', '10%', '-c', '5%', '-p', data_dir]))
    return checks
