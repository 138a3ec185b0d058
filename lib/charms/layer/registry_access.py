"""How the unit reaches its own registry, and the address clients are told: from the config
and two facts of the unit, passed in as functions (called only when needed).

Hooks call these through registry_juju (facts from charmhelpers' hookenv); the image actions
call them directly with the facts from hook_tools, so that an action starts without the
hook environment's imports.
"""
import ipaddress
from collections import namedtuple
from urllib.parse import urlsplit

from charms.layer import registry_config, registry_files, registry_tls

# How tools on the unit reach its own registry: base URL, credentials (None without basic
# auth), the CA file that verifies its certificate (None without TLS) and the client
# certificate and key files to present (None unless tls-client-auth).
Access = namedtuple('Access', 'url netloc username password ca_file client_cert client_key')


def serving_tls(config):
    """The registry_tls.Material the registry serves, or None for plain HTTP."""
    tls = registry_tls.select(config, registry_files.read_file)
    if tls and not tls.ca and registry_tls.self_signed(tls.cert):
        tls = tls._replace(ca=tls.cert)  # clients trust a self-signed certificate itself
    return tls


def local_host(config, unit_address):
    """Address the unit itself reaches its registry on."""
    return unit_address() if config.get('listen-on-unit-address') else '127.0.0.1'


def local_url(config, tls, unit_address):
    return '{}://{}'.format('https' if tls else 'http', registry_config.host_port(
        local_host(config, unit_address), config['registry-port']))


def access(config, unit_address):
    tls = serving_tls(config)
    url = local_url(config, tls, unit_address)
    username = password = None
    if config.get('auth-basic-password'):
        username, password = config['auth-basic-user'], config['auth-basic-password']
    client = registry_files.client_identity(config, tls) or (None, None)
    return Access(url, url.split('://', 1)[1], username, password,
                  registry_files.ca_file(tls), *client)


def client_netloc(config, proxy_addresses, unit_address):
    """host:port clients use: http-host's when set, else the reverse proxy's (the lowest
    address, so that every unit says the same), else the unit's address."""
    if config.get('http-host'):
        parts = urlsplit(config['http-host'])
        port = parts.port or (443 if parts.scheme == 'https' else 80)
        return registry_config.host_port(parts.hostname, port)
    proxies = proxy_addresses()
    host = sorted(proxies, key=_address_key)[0] if proxies else unit_address()
    return registry_config.host_port(host, config['registry-port'])


def _address_key(address):
    try:
        return (0, ipaddress.ip_address(address).packed, '')
    except ValueError:
        return (1, b'', address)
