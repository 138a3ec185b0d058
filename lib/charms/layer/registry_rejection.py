"""Why the registry refused a configuration, in one status line an operator can act on.

The registry checks much of its configuration only when it starts (an S3 region, token
root certificates, the pull-through cache's upstream): a new container that exits instead
of serving has refused it. `message` turns that container's logs into the status: the
options involved (guessed from the registry's own words) and its error line, with every
secret removed. Pure: logs and options in, text out.
"""
import re

# Options whose values must never be shown (a registry error may quote its config).
SECRET_OPTIONS = ('auth-basic-password', 'cache-password', 'storage-s3-secretkey',
                  'storage-s3-accesskey', 'storage-swift-password', 'tls-key-blob')
# Words of the registry's error → the options that feed that part of its configuration
# (only those set are named).
ERROR_OPTIONS = (
    (('region',), ('storage-s3-region', 'storage-s3-regionendpoint')),
    (('s3', 'bucket', 'aws'), ('storage-s3-bucket', 'storage-s3-regionendpoint',
                               'storage-s3-accesskey')),
    (('swift', 'keystone'), ('storage-swift-authurl',)),
    (('authorization (token)', 'token auth', 'root certificate'),
     ('auth-token-root-certs', 'auth-token-realm')),
    (('htpasswd',), ('auth-basic-user', 'auth-basic-password')),
    (('pull through', 'pull-through', 'proxy', 'remote', 'upstream'), ('cache-remoteurl',)),
    (('ca to pool', 'clientca', 'client ca'), ('tls-client-ca-blob', 'tls-client-auth')),
    (('address already in use', 'bind'), ('registry-port', 'debug-port')),
    (('certificate', 'tls', 'x509', 'private key'), ('tls-cert-blob', 'tls-key-blob')),
)
# Options whose value a registry error quotes (an address, a name it could not use).
QUOTABLE_OPTIONS = ('cache-remoteurl', 'storage-s3-regionendpoint', 'storage-s3-region',
                    'storage-s3-bucket', 'storage-swift-authurl', 'storage-swift-container',
                    'auth-token-realm', 'http-host', 'registry-http-proxy',
                    'registry-https-proxy')
MAX_ERROR = 200
# user:password@ in URLs; query strings (tokens, signatures); key=value secrets.
_USERINFO = re.compile(r'(?i)([a-z][a-z0-9+.-]*://)[^/@\s"\']*@')
_QUERY = re.compile(r'\?[^\s"\']+')
_KEY_VALUE = re.compile(r'(?i)\b(password|passwd|secret|token|signature|credential|'
                        r'authorization|secretkey|accesskey)([=:]\s*)[^\s"\',&]+')


def redact(text, config, http_secret=''):
    """text without the secret option values, http.secret, URL credentials and queries."""
    secrets = [str(config.get(option) or '') for option in SECRET_OPTIONS] + [http_secret]
    for secret in sorted((s for s in secrets if s.strip()), key=len, reverse=True):
        text = text.replace(secret, '***')
    text = _USERINFO.sub(r'\1***@', text)
    text = _QUERY.sub('?***', text)
    return _KEY_VALUE.sub(r'\1\2***', text)


def error_line(logs):
    """The registry's own reason for stopping: a panic, a fatal or error log entry, else its
    last line ('' without logs). logrus entries give their msg="..." part."""
    lines = [line.strip() for line in logs.splitlines() if line.strip()]
    for marker in ('panic: ', 'level=fatal', 'level=panic', 'level=error'):
        found = [line for line in lines if marker in line]
        if found:
            line = found[-1] if marker != 'panic: ' else found[0]
            message = re.search(r'msg="((?:[^"\\]|\\.)*)"', line)
            if message:
                return message.group(1)
            return line.split('panic: ', 1)[-1]
    return lines[-1] if lines else ''


def involved_options(error, config):
    """The set options the error is about: those whose value it quotes, else the first rule
    of ERROR_OPTIONS that matches its words and names a set option."""
    quoted = [option for option in QUOTABLE_OPTIONS
              if str(config.get(option) or '').strip().rstrip('/') and
              str(config[option]).strip().rstrip('/') in error]
    if quoted:
        return quoted
    lowered = error.lower()
    for words, options in ERROR_OPTIONS:
        if any(word in lowered for word in words):
            named = [option for option in options if config.get(option)]
            if named:
                return named
    return []


def message(logs, config, http_secret='', previous_serves=True):
    """'Registry refused the new configuration (<options>): <its error>; ...' (logs: the
    failed container's; previous_serves: the last good container runs again)."""
    error = redact(error_line(logs), config, http_secret)
    if len(error) > MAX_ERROR:
        error = error[:MAX_ERROR - 3] + '...'
    options = involved_options(error, config)
    return 'Registry refused the new configuration{}: {}{}'.format(
        ' ({})'.format(', '.join(options)) if options else '',
        error or 'it did not start (no log)',
        '; the last good configuration still serves' if previous_serves else '')
