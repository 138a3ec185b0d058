"""Stand-in for interface:http's provides side (``HttpProvides``,
juju-solutions/interface-http).

Flags: ``{endpoint_name}.available`` while ``endpoint.{endpoint_name}.joined``
(plus charms.reactive's own ``endpoint.{endpoint_name}.*`` flags).
``configure(port, private_address=None, hostname=None)`` publishes raw
``hostname``, ``private-address`` and ``port`` on every relation, defaulting
addresses to our ingress address on that relation; when either address is a
list, one entry per address is made: the first in the top-level keys, the
rest JSON-encoded in ``extended_data``.  ``set_remote(**kwargs)`` publishes
raw keys on every relation (None deletes the key).
"""
import json

from charmhelpers.core import hookenv
from charms.reactive import Endpoint, clear_flag, set_flag, when, when_not


class HttpProvides(Endpoint):

    @when('endpoint.{endpoint_name}.joined')
    def joined(self):
        set_flag(self.expand_name('{endpoint_name}.available'))

    @when_not('endpoint.{endpoint_name}.joined')
    def broken(self):
        clear_flag(self.expand_name('{endpoint_name}.available'))

    def get_ingress_address(self, rel_id=None):
        if rel_id is None:
            rel_id = self.relations[0].relation_id
        return hookenv.ingress_address(rel_id, hookenv.local_unit())

    def configure(self, port, private_address=None, hostname=None):
        for relation in self.relations:
            ingress = self.get_ingress_address(relation.relation_id)
            if isinstance(private_address, list) or isinstance(hostname, list):
                addresses = list(private_address or [])
                hostnames = list(hostname or [])
                count = max(len(addresses), len(hostnames))
                addresses += [ingress] * (count - len(addresses))
                hostnames += [ingress] * (count - len(hostnames))
                entries = [{'hostname': h, 'port': port, 'private-address': a}
                           for a, h in zip(addresses, hostnames)]
                first = entries.pop(0)
                first['extended_data'] = json.dumps(entries)
                relation.to_publish_raw.update(first)
            else:
                relation.to_publish_raw.update({
                    'hostname': hostname or ingress,
                    'private-address': private_address or ingress,
                    'port': port,
                })

    def set_remote(self, **kwargs):
        for relation in self.relations:
            relation.to_publish_raw.update(kwargs)
