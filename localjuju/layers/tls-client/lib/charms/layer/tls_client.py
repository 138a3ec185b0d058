"""Stand-in for layer:tls-client's ``charms.layer.tls_client`` module.

API (same names and signatures as upstream):
  * ``request_server_cert(common_name, sans=None, crt_path=None,
    key_path=None)``: ask the ``certificates`` endpoint (must be
    ``certificates.available``) for a server cert; with paths, the cert
    (plus chain) and key are written there when they arrive (see
    reactive/tls_client.py: update_certs).
  * ``request_client_cert(common_name, sans=None, crt_path=None,
    key_path=None)``: same for a client certificate.
  * ``reset_certificate_write_flag(cert_type)``: clear
    ``tls_client.<server|client|ca>.certificate.written``.
Requested paths are kept in unitdata under ``layer.tls-client.cert-paths``.
"""
from charmhelpers.core import unitdata
from charmhelpers.core.hookenv import log
from charms.reactive import clear_flag, endpoint_from_flag

PATHS_KEY = 'layer.tls-client.cert-paths'


def reset_certificate_write_flag(cert_type):
    if cert_type not in ('server', 'client', 'ca'):
        log('Unknown certificate type!')
        return
    clear_flag('tls_client.{}.certificate.written'.format(cert_type))


def _remember_paths(cert_type, common_name, crt_path, key_path):
    if not crt_path and not key_path:
        return
    kv = unitdata.kv()
    paths = kv.get(PATHS_KEY, {})
    paths.setdefault(cert_type, {})[common_name] = {
        'crt': str(crt_path), 'key': str(key_path)}
    kv.set(PATHS_KEY, paths)


def request_server_cert(common_name, sans=None, crt_path=None, key_path=None):
    endpoint_from_flag('certificates.available').request_server_cert(
        common_name, sans)
    _remember_paths('server', common_name, crt_path, key_path)


def request_client_cert(common_name, sans=None, crt_path=None, key_path=None):
    endpoint_from_flag('certificates.available').request_client_cert(
        common_name, sans)
    _remember_paths('client', common_name, crt_path, key_path)
