"""Stand-in for interface:tls-certificates' requires side (``TlsRequires``,
juju-solutions/interface-tls-certificates); provides side not included.

Wire format (our unit bag on the first relation): raw ``unit_name``
(``app_N``), raw ``common_name``, JSON ``sans``, raw ``certificate_name``
for the first server request; JSON ``cert_requests`` ``{cn: {"sans": []}}``
for further ones; JSON ``client_cert_requests`` for client certs.
Answers read from the provider units: raw ``ca``, ``chain``,
``<unit_name>.server.cert`` / ``.server.key``, ``client.cert`` /
``client.key``; JSON ``<unit_name>.processed_requests`` and
``<unit_name>.processed_client_requests`` ``{cn: {cert, key}}``.

Flags (``{endpoint_name}`` = certificates): ``.available`` (joined),
``.ca.available`` / ``.ca.changed``, ``.server.certs.available`` /
``.server.certs.changed``, ``.client.certs.available`` /
``.client.certs.changed``, ``.certs.available`` / ``.certs.changed``, and
the deprecated ``.server.cert.available``, ``.client.cert.available``,
``.batch.cert.available``; all cleared when no longer joined.
"""
import uuid

from charmhelpers.core import hookenv
from charms.reactive import (Endpoint, clear_flag, data_changed, set_flag,
                             toggle_flag, when, when_not)

from .tls_certificates_common import Certificate

_FLAGS = ('available', 'ca.available', 'ca.changed',
          'server.certs.available', 'server.certs.changed',
          'client.certs.available', 'client.certs.changed',
          'certs.available', 'certs.changed',
          'server.cert.available', 'client.cert.available',
          'batch.cert.available')


class TlsRequires(Endpoint):

    def _flag(self, suffix):
        return self.expand_name('{endpoint_name}.' + suffix)

    @when('endpoint.{endpoint_name}.joined')
    def joined(self):
        self.relations[0].to_publish_raw['unit_name'] = self._unit_name
        prefix = self._flag('')
        ca = self.root_ca_cert
        servers = self.server_certs
        clients = self.client_certs
        ca_changed = bool(ca) and data_changed(prefix + 'ca', ca)
        servers_changed = bool(servers) and data_changed(prefix + 'servers',
                                                         servers)
        clients_changed = bool(clients) and data_changed(prefix + 'clients',
                                                         clients)
        set_flag(self._flag('available'))
        toggle_flag(self._flag('ca.available'), ca)
        toggle_flag(self._flag('ca.changed'), ca_changed)
        toggle_flag(self._flag('server.certs.available'), servers)
        toggle_flag(self._flag('server.certs.changed'), servers_changed)
        toggle_flag(self._flag('client.certs.available'), clients)
        toggle_flag(self._flag('client.certs.changed'), clients_changed)
        toggle_flag(self._flag('certs.available'), servers or clients)
        toggle_flag(self._flag('certs.changed'),
                    servers_changed or clients_changed)
        # deprecated flags, with upstream's truthiness (the client pair is a
        # tuple, hence always set while joined)
        toggle_flag(self._flag('server.cert.available'), servers)
        toggle_flag(self._flag('client.cert.available'),
                    self.get_client_cert())
        toggle_flag(self._flag('batch.cert.available'), servers)

    @when_not('endpoint.{endpoint_name}.joined')
    def broken(self):
        for suffix in _FLAGS:
            clear_flag(self._flag(suffix))

    @property
    def _unit_name(self):
        return hookenv.local_unit().replace('/', '_')

    @property
    def root_ca_cert(self):
        return self.all_joined_units.received_raw['ca']

    def get_ca(self):
        return self.root_ca_cert

    @property
    def root_ca_chain(self):
        return self.all_joined_units.received_raw['chain']

    def get_chain(self):
        return self.root_ca_chain

    def get_client_cert(self):
        raw = self.all_joined_units.received_raw
        return (raw['client.cert'], raw['client.key'])

    def get_server_cert(self):
        certs = self.server_certs
        if not certs:
            return (None, None)
        return (certs[0].cert, certs[0].key)

    @property
    def server_certs(self):
        certs = []
        raw = self.all_joined_units.received_raw
        if self.relations:
            cn = self.relations[0].to_publish_raw['common_name']
            crt = raw['{}.server.cert'.format(self._unit_name)]
            key = raw['{}.server.key'.format(self._unit_name)]
            if crt and key:
                certs.append(Certificate('server', cn, crt, key))
        processed = self.all_joined_units.received[
            '{}.processed_requests'.format(self._unit_name)] or {}
        for cn, data in processed.items():
            certs.append(Certificate('server', cn, data['cert'], data['key']))
        return certs

    @property
    def server_certs_map(self):
        return {c.common_name: c for c in self.server_certs}

    def get_batch_requests(self):
        return self.server_certs_map

    @property
    def client_certs(self):
        processed = self.all_joined_units.received[
            '{}.processed_client_requests'.format(self._unit_name)] or {}
        return [Certificate('client', cn, data['cert'], data['key'])
                for cn, data in processed.items()]

    @property
    def client_certs_map(self):
        return {c.common_name: c for c in self.client_certs}

    def request_server_cert(self, cn, sans=None, cert_name=None):
        if not self.relations:
            return
        raw = self.relations[0].to_publish_raw
        data = self.relations[0].to_publish
        if raw['common_name'] in (None, '', cn):
            # the first request uses the top-level (legacy) fields
            raw['common_name'] = cn
            data['sans'] = sans or []
            raw['certificate_name'] = (raw.get('certificate_name') or
                                       cert_name or str(uuid.uuid4()))
        else:
            requests = data.get('cert_requests', {})
            requests[cn] = {'sans': sans or []}
            data['cert_requests'] = requests

    def add_request_server_cert(self, cn, sans):
        self.request_server_cert(cn, sans)

    def request_server_certs(self):
        """Deprecated upstream; does nothing."""

    def request_client_cert(self, cn, sans):
        if not self.relations:
            return
        data = self.relations[0].to_publish
        requests = data.get('client_cert_requests', {})
        requests[cn] = {'sans': sans}
        data['client_cert_requests'] = requests
