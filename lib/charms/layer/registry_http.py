"""Talking HTTP to the registry: the readiness probe (GET /v2/) and the TLS context every
client of the registry on the unit uses."""
import ssl
import urllib.error
import urllib.request


API_VERSION_HEADER = 'Docker-Distribution-Api-Version'


def probe(url, ca_file=None, client=None, timeout=2):
    """HTTP status of GET <url>/v2/, or None when no registry answers.

    200 and 401 both mean the registry serves (401: authentication is on). An answer
    without the registry's API version header comes from some other service holding the
    port, so it counts as no answer. client: (cert, key) files to present when the
    registry requires client certificates. With TLS the
    chain is checked against ca_file when given; the host name is not, since the probe
    may use a local address that is not in the certificate.
    """
    try:
        context = tls_context(ca_file, verify=bool(ca_file), check_hostname=False,
                              client=client) if url.startswith('https://') else None
        with urllib.request.urlopen(url.rstrip('/') + '/v2/', timeout=timeout,
                                    context=context) as response:
            return response.status if response.headers.get(API_VERSION_HEADER) else None
    except urllib.error.HTTPError as error:
        return error.code if error.headers.get(API_VERSION_HEADER) else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def tls_context(ca_file=None, verify=True, check_hostname=True, client=None):
    """An SSL context for talking to a registry.

    ca_file: CA bundle to verify against (None: the system's); verify=False accepts any
    certificate; check_hostname=False verifies the chain only (the unit reaches its own
    registry on addresses the certificate may not name); client: (cert, key) files to
    present when the registry requires client certificates. Loading them may raise
    OSError or ssl.SSLError.
    """
    context = ssl.create_default_context(cafile=ca_file)
    if not verify or not check_hostname:
        context.check_hostname = False
    if not verify:
        context.verify_mode = ssl.CERT_NONE
    if client:
        context.load_cert_chain(*client)
    return context


def serves(status):
    return status in (200, 401)
