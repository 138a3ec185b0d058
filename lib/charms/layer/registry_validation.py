"""Validation of the charm's configuration: every check of an option's value.

`validate(config)` takes the plain option mapping (as config-get returns it) and returns a list
of `ConfigProblem`s, each naming the option and what is wrong with it; it runs one check
function per area (service, auth, cache, storage, tls). Nothing here touches the system: the
handler blocks on the first problems and leaves the running registry alone. What only the
material or the registry itself can refuse is checked later (registry_tls.material_problems,
registry_container's transaction).
"""
import base64
import binascii
import ipaddress
import re
import ssl
from collections import namedtuple
from urllib.parse import urlsplit

ConfigProblem = namedtuple('ConfigProblem', 'option message')

LOG_LEVELS = ('error', 'warn', 'info', 'debug')
STORAGE_CACHES = ('inmemory', 'disabled')
CONTAINER_NETWORKS = ('host', 'bridge')
# Storage classes and canned ACLs the registry's s3 driver accepts (it refuses to start on
# any other value); Distribution 3 knows more storage classes than 2.8.
S3_STORAGE_CLASSES = ('STANDARD', 'REDUCED_REDUNDANCY', 'NONE')
S3_STORAGE_CLASSES_3 = S3_STORAGE_CLASSES + ('STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING',
                                             'OUTPOSTS', 'GLACIER_IR')
S3_OBJECT_ACLS = ('private', 'public-read', 'public-read-write', 'authenticated-read',
                  'aws-exec-read', 'bucket-owner-read', 'bucket-owner-full-control')
# Levels of the AWS SDK logger that Distribution 3's s3 driver knows (it treats any other
# value as off).
S3_LOG_LEVELS = ('off', 'debug', 'debugwithsigning', 'debugwithhttpbody',
                 'debugwithrequestretries', 'debugwithrequesterrors',
                 'debugwitheventstreambody')
S3_MIN_CHUNK = 5 * 1024 * 1024
BASE64_OPTIONS = ('tls-ca-blob', 'tls-cert-blob', 'tls-key-blob', 'auth-token-root-certs')
TOKEN_OPTIONS = ('auth-token-realm', 'auth-token-service', 'auth-token-issuer',
                 'auth-token-root-certs')
# bcrypt (htpasswd) uses only the first 72 bytes of a password: a longer one would let in
# anyone who knows its start.
BCRYPT_MAX_BYTES = 72
# Longer URLs are certainly mistakes (and would flood the status).
MAX_URL = 2048
MAX_USER = 255
MINIMUM_TLS_VERSIONS = ('tls1.2', 'tls1.3')
# A century: no certificate lives longer (and a date that many days ahead is representable).
MAX_WARNING_DAYS = 36500
HOSTNAME = re.compile(r'^(?=.{1,253}$)(\*\.)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)*'
                      r'[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$')
PEM_CERTIFICATE = re.compile(rb'-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----',
                             re.DOTALL)
SWIFT_REQUIRED = ('storage-swift-authurl', 'storage-swift-username', 'storage-swift-password',
                  'storage-swift-container')
# Docker's own rule for container names.
# A Go duration (time.ParseDuration) without a sign: 0, 90m, 72h, 1h30m, 1.5h.
GO_DURATION = re.compile(r'^(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+)$')
CONTAINER_NAME = re.compile(r'^[a-zA-Z0-9][a-zA-Z0-9_.-]*$')
# A docker image reference: [host[:port]/]path[:tag][@digest]
IMAGE_REFERENCE = re.compile(
    r'^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*'
    r'(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$')


def _text(config, option):
    """The option's value as stripped text; None and '' both mean unset."""
    value = config.get(option)
    return '' if value is None else str(value).strip()


def decode_base64(value):
    """Strict base64 decode, ignoring whitespace (blobs are often pasted wrapped)."""
    return base64.b64decode(''.join(value.split()), validate=True)


def _check_url(config, option, problems, path='slash'):
    """An http(s) URL. path: 'slash' (a path must end with /), 'any' or 'none'.

    Returns True when the option is set and valid (urlsplit will not raise on it).
    """
    value = _text(config, option)
    if not value:
        return
    if len(value) > MAX_URL:
        problems.append(ConfigProblem(option, 'is longer than {} characters'.format(MAX_URL)))
        return
    if any(c.isspace() or ord(c) < 32 for c in value):
        # A newline would also inject lines into files the value is written to.
        problems.append(ConfigProblem(option, 'must not contain spaces or control characters'))
        return
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        problems.append(ConfigProblem(option, 'is not a valid URL'))
        return
    if parts.scheme not in ('http', 'https') or not hostname:
        problems.append(ConfigProblem(option, 'must be an http:// or https:// URL'))
        return
    if len(hostname) > 253:
        problems.append(ConfigProblem(option, 'host name is longer than 253 characters'))
        return
    try:
        parts.port
    except ValueError:
        problems.append(ConfigProblem(option, 'has an invalid port'))
        return
    if path == 'none' and parts.path not in ('', '/'):
        problems.append(ConfigProblem(option, 'must not have a path'))
    elif path == 'slash' and parts.path and not parts.path.endswith('/'):
        problems.append(ConfigProblem(option, 'path must end with a slash'))
    else:
        return True


def _check_port(config, option, problems):
    port = config.get(option)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        problems.append(ConfigProblem(option, 'must be a port number from 1 to 65535'))
        return False
    return True


def validate(config, distribution3=False):
    """Return the list of ConfigProblem for this configuration (empty when valid).

    distribution3: the registry image is Distribution 3.x, which dropped some drivers.
    """
    return (check_service(config) + check_auth(config) + check_cache(config, distribution3) +
            check_storage(config, distribution3) + check_tls(config))


def extra_names(config):
    """The names tls-extra-sans lists (comma or space separated)."""
    return [name for name in re.split(r'[\s,]+', config.get('tls-extra-sans') or '') if name]


def check_service(config):
    """The registry's own service: log level, ports, container, image and addresses."""
    problems = []
    if _text(config, 'log-level') not in LOG_LEVELS:
        problems.append(ConfigProblem('log-level', 'must be one of ' + ', '.join(LOG_LEVELS)))
    ports_ok = all([_check_port(config, 'registry-port', problems),
                    _check_port(config, 'debug-port', problems)])
    if ports_ok and config['registry-port'] == config['debug-port']:
        problems.append(ConfigProblem('debug-port', 'must differ from registry-port'))
    if _text(config, 'storage-cache') not in STORAGE_CACHES:
        problems.append(ConfigProblem('storage-cache',
                                      'must be one of ' + ', '.join(STORAGE_CACHES)))
    if _text(config, 'container-network') not in CONTAINER_NETWORKS:
        problems.append(ConfigProblem('container-network',
                                      'must be one of ' + ', '.join(CONTAINER_NETWORKS)))
    if not CONTAINER_NAME.match(_text(config, 'registry-name')):
        problems.append(ConfigProblem('registry-name', 'is not a valid container name'))
    problems += check_image(config)
    _check_url(config, 'http-host', problems)
    _check_url(config, 'registry-http-proxy', problems, path='none')
    _check_url(config, 'registry-https-proxy', problems, path='none')
    return problems


def check_image(config):
    """registry-image: checked on its own too, before the charm asks docker for it."""
    if not IMAGE_REFERENCE.match(_text(config, 'registry-image')):
        return [ConfigProblem('registry-image', 'is not a valid image reference')]
    return []


def check_auth(config):
    """Basic auth (auth-basic-*) and token auth (auth-token-*)."""
    problems = []
    _check_base64(config, 'auth-token-root-certs', problems)
    token_set = [o for o in TOKEN_OPTIONS if _text(config, o)]
    if _text(config, 'auth-basic-password') and token_set:
        problems.append(ConfigProblem(
            'auth-basic-password', 'basic and token authentication cannot both be configured '
            '(unset auth-basic-password or the auth-token-* options)'))
    elif token_set and len(token_set) < len(TOKEN_OPTIONS):
        missing = [o for o in TOKEN_OPTIONS if o not in token_set]
        problems.append(ConfigProblem(missing[0], 'is required for token authentication'))
    password = _text(config, 'auth-basic-password')
    if password and not _text(config, 'auth-basic-user'):
        problems.append(ConfigProblem('auth-basic-user', 'must be set with auth-basic-password'))
    user = str(config.get('auth-basic-user') or '')
    if ':' in user:
        problems.append(ConfigProblem('auth-basic-user', 'must not contain ":"'))
    elif any(c.isspace() or not c.isprintable() for c in user):
        problems.append(ConfigProblem('auth-basic-user',
                                      'must not contain spaces or control characters'))
    elif len(user) > MAX_USER:
        problems.append(ConfigProblem('auth-basic-user',
                                      'is longer than {} characters'.format(MAX_USER)))
    if password and len(str(config['auth-basic-password']).encode()) > BCRYPT_MAX_BYTES:
        problems.append(ConfigProblem('auth-basic-password', 'is longer than {} bytes, which '
                                      'bcrypt would ignore'.format(BCRYPT_MAX_BYTES)))
    _check_url(config, 'auth-token-realm', problems, path='any')
    return problems


def check_cache(config, distribution3=False):
    """The pull-through cache (cache-*)."""
    problems = []
    if _check_url(config, 'cache-remoteurl', problems, path='none') and \
            urlsplit(_text(config, 'cache-remoteurl')).username is not None:
        # The URL is shown in the status; the password belongs in cache-password.
        problems.append(ConfigProblem('cache-remoteurl', 'must not contain credentials (use '
                                      'cache-username and cache-password)'))
    if bool(_text(config, 'cache-username')) != bool(_text(config, 'cache-password')):
        problems.append(ConfigProblem('cache-password',
                                      'cache-username and cache-password go together'))
    if (_text(config, 'cache-username') or _text(config, 'cache-password')) \
            and not _text(config, 'cache-remoteurl'):
        problems.append(ConfigProblem('cache-remoteurl',
                                      'is required when cache credentials are set'))
    cache_ttl = _text(config, 'cache-ttl')
    if cache_ttl:
        if not GO_DURATION.match(cache_ttl):
            problems.append(ConfigProblem('cache-ttl', 'must be a duration such as 72h, 90m or '
                                          '0 (never expire)'))
        elif not _text(config, 'cache-remoteurl'):
            problems.append(ConfigProblem('cache-ttl', 'only applies to a pull-through cache '
                                          '(set cache-remoteurl)'))
        elif not distribution3:
            problems.append(ConfigProblem('cache-ttl', 'needs a 3.x registry-image (registry '
                                          '2.8 always keeps cached content for 7 days)'))
    return problems


def check_storage(config, distribution3=False):
    """The storage backend: Swift (storage-swift-*) or S3 (storage-s3-*)."""
    problems = []
    swift = any(_text(config, o) for o in ('storage-swift-authurl', 'storage-swift-username',
                                           'storage-swift-password'))
    if swift:
        for option in SWIFT_REQUIRED:
            if not _text(config, option):
                problems.append(ConfigProblem(option, 'is required for Swift storage'))
        # Keystone URLs end in /v3 with no slash.
        _check_url(config, 'storage-swift-authurl', problems, path='any')
        if distribution3:
            problems.append(ConfigProblem(
                'storage-swift-authurl', 'Swift storage needs a 2.x registry-image '
                '(Distribution 3 dropped the swift driver)'))
    if _text(config, 'storage-s3-bucket'):
        if swift:
            problems.append(ConfigProblem('storage-s3-bucket',
                                          'S3 and Swift storage cannot both be configured'))
        problems += _s3_problems(config, distribution3)
    elif any(_text(config, o) for o in ('storage-s3-accesskey', 'storage-s3-secretkey',
                                        'storage-s3-region', 'storage-s3-regionendpoint')):
        problems.append(ConfigProblem('storage-s3-bucket',
                                      'is required when other storage-s3-* options are set'))
    return problems


def _s3_problems(config, distribution3):
    problems = []
    # Registry 2.8 wants a region even with an endpoint (S3-compatible services take any,
    # e.g. us-east-1); 3.x only without one.
    if not _text(config, 'storage-s3-region') and \
            (not distribution3 or not _text(config, 'storage-s3-regionendpoint')):
        problems.append(ConfigProblem('storage-s3-region', 'is required for S3 storage'
                                      if not distribution3 else
                                      'storage-s3-region or storage-s3-regionendpoint '
                                      'is required for S3 storage'))
    if bool(_text(config, 'storage-s3-accesskey')) != bool(_text(config, 'storage-s3-secretkey')):
        problems.append(ConfigProblem('storage-s3-secretkey',
                                      'storage-s3-accesskey and storage-s3-secretkey '
                                      'go together'))
    _check_url(config, 'storage-s3-regionendpoint', problems, path='none')
    classes = S3_STORAGE_CLASSES_3 if distribution3 else S3_STORAGE_CLASSES
    if _text(config, 'storage-s3-storageclass').upper() not in classes:
        problems.append(ConfigProblem('storage-s3-storageclass',
                                      'must be one of ' + ', '.join(classes)))
    if _text(config, 'storage-s3-objectacl') not in S3_OBJECT_ACLS:
        problems.append(ConfigProblem('storage-s3-objectacl',
                                      'must be one of ' + ', '.join(S3_OBJECT_ACLS)))
    if _text(config, 'storage-s3-loglevel').lower() not in S3_LOG_LEVELS:
        problems.append(ConfigProblem('storage-s3-loglevel',
                                      'must be one of ' + ', '.join(S3_LOG_LEVELS)))
    for option in ('storage-s3-chunksize', 'storage-s3-multipartcopychunksize',
                   'storage-s3-multipartcopythresholdsize'):
        if (config.get(option) or 0) < S3_MIN_CHUNK:
            problems.append(ConfigProblem(option, 'must be at least 5242880 (5 MiB)'))
    if (config.get('storage-s3-multipartcopymaxconcurrency') or 0) < 1:
        problems.append(ConfigProblem('storage-s3-multipartcopymaxconcurrency',
                                      'must be at least 1'))
    return problems


def check_tls(config):
    """The TLS options themselves (tls-*); the material they point to is checked by
    registry_tls.material_problems."""
    problems = []
    for option in ('tls-ca-blob', 'tls-cert-blob', 'tls-key-blob'):
        _check_base64(config, option, problems)
    if bool(_text(config, 'tls-cert-blob')) != bool(_text(config, 'tls-key-blob')):
        problems.append(ConfigProblem('tls-key-blob', 'tls-cert-blob and tls-key-blob go together'))
    if config.get('tls-minimum-version') not in MINIMUM_TLS_VERSIONS:
        problems.append(ConfigProblem('tls-minimum-version',
                                      'must be one of ' + ', '.join(MINIMUM_TLS_VERSIONS)))
    days = config.get('tls-expiry-warning-days')
    if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= MAX_WARNING_DAYS:
        problems.append(ConfigProblem('tls-expiry-warning-days',
                                      'must be from 0 to {}'.format(MAX_WARNING_DAYS)))
    for name in extra_names(config):
        if not (_is_ip(name) or HOSTNAME.match(name)):
            problems.append(ConfigProblem(
                'tls-extra-sans', '{!r} is neither a host name nor an IP address'.format(
                    name[:64])))
            break
    if config.get('tls-client-ca-blob'):
        try:
            problem = _certificates_problem(decode_base64(config['tls-client-ca-blob']))
        except ValueError:
            problem = 'is not valid base64'
        if problem:
            problems.append(ConfigProblem('tls-client-ca-blob', problem))
    return problems


def _check_base64(config, option, problems):
    value = _text(config, option)
    if value:
        try:
            decode_base64(value)
        except (binascii.Error, ValueError):
            problems.append(ConfigProblem(option, 'is not valid base64'))


def _is_ip(name):
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _certificates_problem(pem):
    """Why pem is not a bundle of certificates, or None.

    Every block must parse: the registry's PEM reader skips a broken block when another
    follows (the unit's own client certificate is appended to the client CAs), and would
    then trust only the certificates that parsed.
    """
    blocks = PEM_CERTIFICATE.findall(pem)
    if not blocks:
        return 'holds no PEM certificate'
    for block in blocks:
        try:
            ssl.create_default_context().load_verify_locations(cadata=block.decode('ascii'))
        except (ssl.SSLError, ValueError, UnicodeDecodeError):
            return 'holds a certificate that does not parse'
    return None


def normalize(config):
    """The options as every part of the charm must read them: whitespace-only strings are
    unset, as validation treats them (a password of spaces must not turn basic auth on)."""
    return {option: '' if isinstance(value, str) and not value.strip() else value
            for option, value in config.items()}


def describe(problems):
    """One status line for the problems: the first two in full, then a count."""
    shown = ['{}: {}'.format(p.option, p.message) for p in problems[:2]]
    if len(problems) > 2:
        shown.append('and {} more'.format(len(problems) - 2))
    return 'Invalid config: ' + '; '.join(shown)
