"""Stand-in for interface:http's requires side (``HttpRequires``), minimal.

Flag ``{endpoint_name}.available`` once a joined unit published a ``port``
(cleared when no longer joined); ``services()`` lists
``{'service_name': app, 'hosts': [{'hostname', 'private-address', 'port'}]}``
per related application (``extended_data`` entries included).
"""
import json

from charms.reactive import Endpoint, clear_flag, set_flag, when, when_not


class HttpRequires(Endpoint):

    @when('endpoint.{endpoint_name}.changed')
    def changed(self):
        if any(u.received_raw['port'] for u in self.all_joined_units):
            set_flag(self.expand_name('{endpoint_name}.available'))

    @when_not('endpoint.{endpoint_name}.joined')
    def broken(self):
        clear_flag(self.expand_name('{endpoint_name}.available'))

    def services(self):
        def host_of(data):
            address = data.get('private-address')
            host = data.get('hostname') or address
            if host and data.get('port'):
                return (host, address, data['port'])
            return None

        services = {}
        for relation in self.relations:
            hosts = set()
            for unit in relation.joined_units:
                data = dict(unit.received_raw)
                entries = [data]
                if data.get('extended_data'):
                    entries += json.loads(data['extended_data'])
                hosts.update(h for h in map(host_of, entries) if h)
            service = services.setdefault(relation.application_name, {
                'service_name': relation.application_name, 'hosts': []})
            service['hosts'] = [
                {'hostname': h, 'private-address': a, 'port': p}
                for h, a, p in sorted(hosts)]
        return [s for s in services.values() if s['hosts']]
