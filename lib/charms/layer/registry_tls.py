"""TLS material: where it comes from, whether it can be served, what to request and report.

One notion of "TLS on": the registry serves HTTPS exactly when `select` finds material, and
status, clients and relations all follow from that. Sources, first match wins:

  1. tls-cert-blob + tls-key-blob (+ tls-ca-blob): the operator's explicit choice.
  2. the certificates relation: files layer:tls-client writes under registry_paths.RELATION_DIR.
  3. files at tls-cert-path + tls-key-path (+ tls-ca-path): placed on the unit by the operator.

The charm never writes to the tls-*-path files (they stay the operator's); what it serves is
copied into its own directory (registry_paths.HOST_TLS_DIR).

`select`, `material_problems`, `request_names` and `expiry_note` are pure;
`inspect` is the one side effect (openssl and Python's ssl on temporary files).
"""
import datetime
import os
import shutil
import ssl
import subprocess
import tempfile
from collections import namedtuple

from charms.layer.registry_validation import ConfigProblem, decode_base64
from charms.layer import registry_paths as paths

# cert, key, ca: PEM bytes (ca may be None); source: where they came from, one of SOURCES.
Material = namedtuple('Material', 'cert key ca source')
# The options (or relation) an operator fixes for a problem with each source's cert/key/ca.
SOURCES = {
    'blobs': ('tls-cert-blob', 'tls-key-blob', 'tls-ca-blob'),
    'relation': ('certificates relation',) * 3,
    'paths': ('tls-cert-path', 'tls-key-path', 'tls-ca-path'),
}
# What inspect() learns about a certificate and its key.
CertInfo = namedtuple('CertInfo', 'not_after problems')


def select(config, read):
    """The Material to serve, or None for plain HTTP. read(path) -> bytes or None."""
    if config.get('tls-cert-blob') and config.get('tls-key-blob'):
        ca = config.get('tls-ca-blob')
        return Material(decode_base64(config['tls-cert-blob']),
                        decode_base64(config['tls-key-blob']),
                        decode_base64(ca) if ca else None, 'blobs')
    for source, (cert_path, key_path, ca_path) in (
            ('relation', (paths.RELATION_CERT, paths.RELATION_KEY, paths.RELATION_CA)),
            ('paths', (config.get('tls-cert-path'), config.get('tls-key-path'),
                       config.get('tls-ca-path')))):
        cert = read(cert_path) if cert_path else None
        key = read(key_path) if key_path else None
        if cert and key:
            return Material(cert, key, read(ca_path) if ca_path else None, source)
    return None


def client_ca(config, material):
    """PEM of the CAs client certificates must chain to, or None without tls-client-auth."""
    if not config.get('tls-client-auth') or material is None:
        return None
    if config.get('tls-client-ca-blob'):
        return decode_base64(config['tls-client-ca-blob'])
    return material.ca


def material_problems(config, material, info, now):
    """Problems that keep this material from being served. info: inspect()'s CertInfo."""
    problems = []
    cert_option, _, ca_option = SOURCES[material.source]
    for option, message in info.problems:
        problems.append(ConfigProblem(SOURCES[material.source][option], message))
    if info.not_after is not None and info.not_after <= now:
        problems.append(ConfigProblem(cert_option, 'certificate expired on {:%Y-%m-%d}'
                                      .format(info.not_after)))
    if config.get('tls-client-auth') and not client_ca(config, material):
        problems.append(ConfigProblem(
            'tls-client-auth', 'needs tls-client-ca-blob, or a CA from {}'.format(ca_option)))
    return problems


def expiry_note(info, now, warning_days):
    """Status note when the certificate expires within warning_days, else None."""
    if info is None or info.not_after is None:
        return None
    left = info.not_after - now
    if left > datetime.timedelta(days=warning_days):
        return None
    return 'WARNING: TLS certificate expires in {} days ({:%Y-%m-%d})'.format(
        max(left.days, 0), info.not_after)


def request_names(unit_address, public_address, hostname, http_host, proxy_addresses, extra):
    """(common name, SANs) of the server certificate to request: every name clients use."""
    names = [unit_address, public_address, hostname, http_host] + list(proxy_addresses) + \
        list(extra)
    sans = list(dict.fromkeys(n for n in names if n))
    return unit_address, sans


# --- side effect ----------------------------------------------------------------------------

def inspect(material):
    """CertInfo for material: expiry date and [(0|1|2 for cert|key|ca, message)] problems.

    Works on copies in a private temporary directory; the key never leaves it.
    """
    workdir = tempfile.mkdtemp(prefix='registry-tls-')  # mode 0700
    try:
        paths = []
        for index, content in enumerate((material.cert, material.key, material.ca)):
            path = os.path.join(workdir, str(index))
            if content:
                with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), 'wb') as stream:
                    stream.write(content)
            paths.append(path if content else None)
        return _inspect_files(*paths)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def self_signed(cert):
    """Whether cert (PEM bytes) verifies against itself: then it is its own CA."""
    with tempfile.NamedTemporaryFile(prefix='registry-cert-') as stream:
        stream.write(cert)
        stream.flush()
        rc, _ = _openssl('verify', '-no_check_time', '-CAfile', stream.name, stream.name)
    return rc == 0


def make_client_identity(cert_path, key_path):
    """A self-signed client certificate for the unit's own tools (key mode 0600)."""
    directory = os.path.dirname(cert_path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    old_umask = os.umask(0o077)
    try:
        subprocess.run(
            ['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256',
             '-days', '3650', '-subj', '/CN=docker-registry unit client',
             '-addext', 'basicConstraints=critical,CA:TRUE',
             '-addext', 'keyUsage=critical,digitalSignature,keyCertSign',
             '-addext', 'extendedKeyUsage=clientAuth',
             '-keyout', key_path, '-out', cert_path],
            check=True, capture_output=True, timeout=60)
    finally:
        os.umask(old_umask)
    os.chmod(cert_path, 0o644)


def _openssl(*args):
    result = subprocess.run(('openssl',) + args, capture_output=True, text=True, timeout=30)
    return result.returncode, result.stdout


def _inspect_files(cert, key, ca):
    rc, out = _openssl('x509', '-in', cert, '-noout', '-enddate')
    if rc != 0 or not out.startswith('notAfter='):
        return CertInfo(None, [(0, 'is not a PEM certificate')])
    not_after = datetime.datetime.strptime(out.strip()[len('notAfter='):],
                                           '%b %d %H:%M:%S %Y %Z')
    problems = []
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except ssl.SSLError as error:
        reason = 'does not match the certificate' if 'KEY_VALUES_MISMATCH' in str(error) \
            else 'is not a PEM private key'
        problems.append((1, reason))
    if ca:
        rc, _ = _openssl('x509', '-in', ca, '-noout')
        if rc != 0:
            problems.append((2, 'is not a PEM certificate'))
        else:
            # Expiry is reported apart; intermediates may follow the certificate.
            rc, _ = _openssl('verify', '-no_check_time', '-partial_chain', '-CAfile', ca,
                             '-untrusted', cert, cert)
            if rc != 0:
                problems.append((2, 'did not sign the certificate'))
    return CertInfo(not_after, problems)
