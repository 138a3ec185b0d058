"""Stand-in for layer:tls-client's reactive/tls_client.py.

Handlers and the flags they set (names as upstream):
  * ``certificates.ca.available`` -> write the CA to the
    ``tls-client.ca_certificate_path`` option (``tls_client.ca.written``
    when written, ``tls_client.ca.saved``); on change install it
    system-wide as /usr/local/share/ca-certificates/<app>.crt and run
    update-ca-certificates (``tls_client.ca_installed``).
  * ``certificates.server.cert.available`` -> write the first server cert
    (+ chain) / key to ``server_certificate_path`` / ``server_key_path``
    (``tls_client.server.certificate.written``,
    ``tls_client.server.certificate.saved``, ``tls_client.server.key.saved``).
  * ``certificates.client.cert.available`` -> same for the global client
    cert (``tls_client.client.certificate.*``, ``tls_client.client.key.saved``).
  * ``certificates.certs.changed`` -> write every cert requested with paths
    through request_server_cert / request_client_cert; per changed cert
    ``tls_client.<type>.certs.changed`` and
    ``tls_client.<type>.cert.<cn>.changed``, ``tls_client.certs.changed``
    if any changed, ``tls_client.certs.saved`` once all are present; then
    clears ``certificates.certs.changed``.
  * upgrade-charm hook -> clear the ``*.saved`` flags.
Files are written mode 0440 in directories made mode 0770.
"""
import os
from subprocess import check_call

from charmhelpers.core import hookenv, unitdata
from charmhelpers.core.hookenv import log
from charms import layer
from charms.reactive import (clear_flag, endpoint_from_flag, hook, set_flag,
                             when)
from charms.reactive.helpers import data_changed


def _ensure_directory(path):
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory)
    os.chmod(directory, 0o770)


def _write_file(path, content):
    _ensure_directory(path)
    with open(path, 'w') as fp:
        fp.write(content)
    os.chmod(path, 0o440)


def _write_if_needed(path, content, changed):
    if changed or not os.path.exists(path):
        log('Writing {}'.format(path))
        _write_file(path, content)
        return True
    return False


@when('certificates.ca.available')
def store_ca(tls):
    ca = tls.get_ca()
    if not ca:
        return
    ca_path = layer.options('tls-client').get('ca_certificate_path')
    changed = data_changed('certificate_authority', ca)
    if ca_path:
        if not ca.endswith('\n'):
            ca += '\n'
        if _write_if_needed(ca_path, ca, changed):
            set_flag('tls_client.ca.written')
        set_flag('tls_client.ca.saved')
    if changed:
        install_ca(ca)


def _store_pair(kind, pair, chain):
    crt, key = pair if pair else (None, None)
    if not (crt and key):
        return
    if chain:
        crt = crt + '\n' + chain
    opts = layer.options('tls-client')
    crt_path = opts.get('{}_certificate_path'.format(kind))
    key_path = opts.get('{}_key_path'.format(kind))
    crt_changed = data_changed('{}_certificate'.format(kind), crt)
    key_changed = data_changed('{}_key'.format(kind), key)
    if crt_path:
        if _write_if_needed(crt_path, crt, crt_changed):
            set_flag('tls_client.{}.certificate.written'.format(kind))
        set_flag('tls_client.{}.certificate.saved'.format(kind))
    if key_path:
        _write_if_needed(key_path, key, key_changed)
        set_flag('tls_client.{}.key.saved'.format(kind))


@when('certificates.server.cert.available')
def store_server(tls):
    _store_pair('server', tls.get_server_cert(), tls.get_chain())


@when('certificates.client.cert.available')
def store_client(tls):
    _store_pair('client', tls.get_client_cert(), tls.get_chain())


@when('certificates.certs.changed')
def update_certs():
    tls = endpoint_from_flag('certificates.certs.changed')
    wanted = unitdata.kv().get('layer.tls-client.cert-paths', {})
    available = {'server': tls.server_certs_map,
                 'client': tls.client_certs_map}
    if not available['client']:
        # upstream falls back to the global client cert for every request
        pair = tls.get_client_cert()
        if pair is not None:
            for cn in wanted.get('client', {}):
                available['client'][cn] = pair
    chain = tls.get_chain()
    all_ready, any_changed = True, False
    for kind in ('server', 'client'):
        for cn, paths in wanted.get(kind, {}).items():
            pair = available[kind].get(cn)
            if not pair:
                all_ready = False
                continue
            if not data_changed('layer.tls-client.{}.{}'.format(kind, cn),
                                pair):
                continue
            if isinstance(pair, tuple):
                crt, key = pair
            else:
                crt = pair.cert if paths['crt'] else None
                key = pair.key if paths['key'] else None
            if crt:
                if chain:
                    crt = crt + '\n' + chain
                _ensure_directory(paths['crt'])
                with open(paths['crt'], 'w') as fp:
                    fp.write(crt)
            if key:
                _ensure_directory(paths['key'])
                with open(paths['key'], 'w') as fp:
                    fp.write(key)
            any_changed = True
            for flag in ('tls_client.{}.certs.changed'.format(kind),
                         'tls_client.{}.cert.{}.changed'.format(kind, cn)):
                clear_flag(flag)  # re-trigger handlers if left set
                set_flag(flag)
    if all_ready:
        set_flag('tls_client.certs.saved')
    if any_changed:
        clear_flag('tls_client.certs.changed')
        set_flag('tls_client.certs.changed')
    clear_flag('certificates.certs.changed')


def install_ca(certificate_authority):
    """Trust the CA system-wide (Debian/Ubuntu ca-certificates)."""
    if not certificate_authority:
        return
    name = hookenv.service_name()
    path = '/usr/local/share/ca-certificates/{}.crt'.format(name)
    log('Writing CA certificate to {}'.format(path))
    _write_file(path, certificate_authority)
    check_call(['update-ca-certificates'])
    set_flag('tls_client.ca_installed')


@hook('upgrade-charm')
def remove_states():
    for flag in ('tls_client.ca.saved', 'tls_client.server.certificate.saved',
                 'tls_client.server.key.saved',
                 'tls_client.client.certificate.saved',
                 'tls_client.client.key.saved'):
        clear_flag(flag)
