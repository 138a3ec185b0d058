"""Configuration → the registry's config.yml.

`registry_context(config, facts)` turns charm options plus facts about the unit into the
plain values the template needs; `render_registry_config(context)` renders
templates/config.yml.j2. Both are pure: nothing is read from or written to the system.
"""
import json
import os
from collections import namedtuple
from urllib.parse import urlsplit

from charms.layer import registry_paths as paths

# Paths inside the registry container.
HTPASSWD_REALM = 'Docker Registry'

# Facts about the unit that are not options:
#   listen_host: address to bind ('' = every interface)
#   http_secret: the application's shared http.secret ('' until the leader set it)
#   tls: a TlsSettings when TLS is on, else None
#   distribution3: the image is Distribution 3.x (its config differs from 2.8's)
#   unit_address: the unit's ingress address, where the debug server listens ('' = loopback)
Facts = namedtuple('Facts', 'listen_host http_secret tls distribution3 unit_address',
                   defaults=('',))
TlsSettings = namedtuple('TlsSettings', 'minimum_version client_cas')

# storage-s3-<suffix> → parameter of the registry's s3 driver. storage-s3-skip-v4-auth is
# the inverse of v4auth and handled apart (see s3_signs_v4). forcepathstyle, usedualstack,
# accelerate and loglevel are read by Distribution 3 only; 2.8 ignores them (and always
# uses path-style requests with a regionendpoint).
S3_PARAMETERS = {
    'accesskey': 'accesskey', 'secretkey': 'secretkey', 'region': 'region',
    'regionendpoint': 'regionendpoint', 'forcepathstyle': 'forcepathstyle',
    'bucket': 'bucket', 'encrypt': 'encrypt', 'keyid': 'keyid', 'secure': 'secure',
    'skip-verify': 'skipverify', 'chunksize': 'chunksize',
    'multipartcopychunksize': 'multipartcopychunksize',
    'multipartcopymaxconcurrency': 'multipartcopymaxconcurrency',
    'multipartcopythresholdsize': 'multipartcopythresholdsize',
    'rootdirectory': 'rootdirectory', 'storageclass': 'storageclass',
    'useragent': 'useragent', 'usedualstack': 'usedualstack', 'accelerate': 'accelerate',
    'objectacl': 'objectacl', 'loglevel': 'loglevel',
}
SWIFT_PARAMETERS = ('authurl', 'username', 'password', 'region', 'tenant', 'container',
                    'domain')


def _set(value):
    """Options left empty are omitted: None and '' both mean unset."""
    return value is not None and value != ''


def is_amazon_s3(config):
    """Whether S3 storage is Amazon's own: no endpoint, or one at amazonaws.com."""
    endpoint = config.get('storage-s3-regionendpoint')
    if not endpoint:
        return True
    host = (urlsplit(endpoint).hostname or '').rstrip('.')
    return host == 'amazonaws.com' or host.endswith('.amazonaws.com')


def s3_signs_v4(config):
    """Whether the s3 driver signs requests with AWS signature version 4.

    Amazon S3 accepts only v4, and the registry refuses to start on Amazon S3 without it,
    so storage-s3-skip-v4-auth (whose historical default is true) only applies to
    S3-compatible services at a storage-s3-regionendpoint.
    """
    return is_amazon_s3(config) or not config.get('storage-s3-skip-v4-auth')


def storage_driver(config):
    """('s3'|'swift'|'filesystem', parameters) chosen by the options."""
    if _set(config.get('storage-s3-bucket')):
        params = {param: config.get('storage-s3-' + suffix)
                  for suffix, param in S3_PARAMETERS.items()}
        params = {k: v for k, v in params.items() if _set(v)}
        params['v4auth'] = s3_signs_v4(config)
        return 's3', params
    if _set(config.get('storage-swift-authurl')):
        params = {p: config.get('storage-swift-' + p) for p in SWIFT_PARAMETERS}
        return 'swift', {k: v for k, v in params.items() if _set(v)}
    return 'filesystem', {'rootdirectory': paths.CONTAINER_DATA}


def shares_storage(config):
    """Whether every unit sees the same image data (object storage)."""
    return storage_driver(config)[0] != 'filesystem'


def host_port(host, port):
    """host:port, with an IPv6 address in brackets ([fd00::1]:5000); '' host: ':port'."""
    return '{}:{}'.format('[{}]'.format(host) if ':' in host else host, port)


def registry_context(config, facts):
    """Template context for config.yml.j2."""
    driver, params = storage_driver(config)
    listen_host = '' if config.get('container-network') == 'bridge' else facts.listen_host
    context = {
        'log_level': config['log-level'],
        's3': params if driver == 's3' else None,
        'swift': params if driver == 'swift' else None,
        'data_dir': paths.CONTAINER_DATA,
        'blob_cache': None if config['storage-cache'] == 'disabled' else config['storage-cache'],
        'delete_enabled': bool(config['storage-delete']),
        'redirect_disabled': bool(config['storage-redirect-disable']),
        'read_only': bool(config['storage-read-only']),
        'listen_addr': host_port(listen_host, config['registry-port']),
        'http_secret': facts.http_secret,
        'http_host': config.get('http-host') or None,
        'tls': None,
        'debug_addr': None,
        'htpasswd': None,
        'token': None,
        'proxy': None,
    }
    if facts.tls:
        context['tls'] = {
            'certificate': paths.CONTAINER_TLS_CERT, 'key': paths.CONTAINER_TLS_KEY,
            'minimum_version': facts.tls.minimum_version,
            'client_cas': [paths.CONTAINER_TLS_CLIENT_CA] if facts.tls.client_cas else [],
        }
    if config.get('prometheus-metrics'):
        # The debug server also serves pprof: never on every address of the host. In bridge
        # mode the container has its own addresses and docker publishes the port on the
        # unit's address only (registry_container.container_spec).
        debug_host = '' if config.get('container-network') == 'bridge' else \
            facts.unit_address or '127.0.0.1'
        context['debug_addr'] = host_port(debug_host, config['debug-port'])
    if config.get('auth-basic-password'):
        context['htpasswd'] = {'realm': HTPASSWD_REALM, 'path': paths.CONTAINER_HTPASSWD}
    elif config.get('auth-token-realm'):
        context['token'] = {
            'realm': config['auth-token-realm'], 'service': config['auth-token-service'],
            'issuer': config['auth-token-issuer'], 'rootcertbundle': paths.CONTAINER_TOKEN_CERTS,
        }
    if config.get('cache-remoteurl'):
        context['proxy'] = {'remoteurl': config['cache-remoteurl'],
                            'username': config.get('cache-username') or None,
                            'password': config.get('cache-password') or None,
                            # proxy.ttl exists from Distribution 3 on (validation blocks
                            # cache-ttl with a 2.8 image).
                            'ttl': (config.get('cache-ttl') or None)
                            if facts.distribution3 else None}
    return context


def yaml_scalar(value):
    """A YAML-safe rendering of one value: JSON is valid YAML and quotes every string."""
    return json.dumps(value)


def render_registry_config(context, templates_dir):
    # Imported here: jinja2 (and charmhelpers' host, which it imports) would otherwise
    # slow every image action's start.
    from charms.templating.jinja2 import render
    return render(source='config.yml.j2', context=context, templates_dir=templates_dir,
                  filters={'y': yaml_scalar})


def templates_dir(charm_dir):
    return os.path.join(charm_dir, 'templates')
