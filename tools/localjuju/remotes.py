"""Scripted remote applications: the other side of our relations.

Each class reacts to the committed model state after every hook of ours (the runner loops
until nothing changes).  A remote app writes only into its own units' bags and into its own
record `st['remotes'][name]`, whose `received` entry is shown by `status` so tests can read
what it got.
"""
import json
import os
import subprocess
import tempfile

import yaml

from . import machine as M
from . import state as S


def decode(v):
    """Relation values may be raw or JSON encoded; decode JSON when it parses."""
    if not isinstance(v, str):
        return v
    try:
        return json.loads(v)
    except ValueError:
        return v


class Remote:
    kind = None
    endpoint = None
    interface = None
    role = None  # our side's role must be the opposite

    def __init__(self, name, rec, mdir):
        self.name = name
        self.rec = rec
        self.dir = os.path.join(mdir, 'remotes', name)
        os.makedirs(self.dir, exist_ok=True)

    def relations(self, st):
        for num, rel in S.by_number(st['relations']):
            if self.name in rel['endpoints'] and not rel.get('broken'):
                yield num, rel

    @staticmethod
    def our_units(rel, name):
        return sorted((u for u in rel['members'] if S.app_of(u) != name),
                      key=lambda u: int(u.split('/')[1]))

    def set_bag(self, rel, unit, values):
        """Update a remote unit's bag; None or '' deletes. Return True if anything changed."""
        before = rel['units'].get(unit, {})
        rel['units'][unit] = S.merged(before, {k: None if v == '' else v
                                               for k, v in values.items()})
        return rel['units'][unit] != before

    def react(self, st):
        """Return a list of (relation number, remote unit) whose bag changed."""
        return []

    def received_bags(self, st):
        """{our unit: its bag, values decoded} over every relation with this remote."""
        received = {}
        for num, rel in self.relations(st):
            for u in self.our_units(rel, self.name):
                received[u] = {k: decode(v) for k, v in rel['units'].get(u, {}).items()}
        return received

    def run(self, st, verb, args):
        raise ValueError('%s has no verb %s' % (self.kind, verb))


class EasyRSA(Remote):
    kind = 'easyrsa'
    endpoint = 'client'
    interface = 'tls-certificates'
    role = 'provides'

    @property
    def ca_crt(self):
        return os.path.join(self.dir, 'ca.crt')

    @property
    def ca_key(self):
        return os.path.join(self.dir, 'ca.key')

    def ensure_ca(self):
        if os.path.exists(self.ca_crt) and os.path.exists(self.ca_key):
            return
        gen = self.rec.get('ca_generation', 0) + 1
        self.rec['ca_generation'] = gen
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256',
                        '-days', '3650', '-subj', '/CN=localjuju easyrsa CA %d' % gen,
                        '-addext', 'basicConstraints=critical,CA:TRUE',
                        '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
                        '-keyout', self.ca_key, '-out', self.ca_crt],
                       check=True, capture_output=True)

    def ca_pem(self):
        self.ensure_ca()
        with open(self.ca_crt) as f:
            return f.read()

    def issue(self, cn, sans):
        self.ensure_ca()
        import ipaddress
        names = []
        for s in [cn] + list(sans or []):
            if not s or s in names:
                continue
            names.append(s)
        alt = []
        for n in names:
            try:
                ipaddress.ip_address(n)
                alt.append('IP:%s' % n)
            except ValueError:
                alt.append('DNS:%s' % n)
        with tempfile.TemporaryDirectory() as d:
            key, csr, crt, ext = (os.path.join(d, x) for x in ('k', 'csr', 'crt', 'ext'))
            with open(ext, 'w') as f:
                f.write('basicConstraints=CA:FALSE\n'
                        'keyUsage=digitalSignature,keyEncipherment\n'
                        'extendedKeyUsage=serverAuth,clientAuth\n')
                if alt:
                    f.write('subjectAltName=%s\n' % ','.join(alt))
            subprocess.run(['openssl', 'req', '-new', '-newkey', 'rsa:2048', '-nodes',
                            '-keyout', key, '-subj', '/CN=%s' % cn[:64], '-out', csr],
                           check=True, capture_output=True)
            subprocess.run(['openssl', 'x509', '-req', '-in', csr, '-CA', self.ca_crt,
                            '-CAkey', self.ca_key, '-set_serial',
                            str(int.from_bytes(os.urandom(8), 'big')), '-days', '365',
                            '-sha256', '-extfile', ext, '-out', crt],
                           check=True, capture_output=True)
            with open(crt) as f1, open(key) as f2:
                return f1.read(), f2.read()

    def cert_for(self, unit, cn, sans):
        issued = self.rec.setdefault('issued', {})
        k = '%s|%s' % (unit, cn)
        gen = self.rec.get('ca_generation', 0)
        ent = issued.get(k)
        if not ent or ent['sans'] != list(sans) or ent['ca_generation'] != gen:
            cert, key = self.issue(cn, sans)
            ent = issued[k] = {'sans': list(sans), 'cert': cert, 'key': key,
                               'ca_generation': self.rec.get('ca_generation', 0)}
        return ent['cert'], ent['key']

    def react(self, st):
        changed = []
        received = self.rec.setdefault('received', {})
        for num, rel in self.relations(st):
            me = self.rec['units'][0]
            ca = self.ca_pem()
            values = {'ca': ca, 'chain': ca}
            # Like the easyrsa charm, one global client certificate for every related unit
            # (interface:tls-certificates' deprecated get_client_cert; layer:tls-client
            # reads it whenever the relation is up).
            cert, key = self.cert_for('*global*', 'client', [])
            values['client.cert'], values['client.key'] = cert, key
            for u in self.our_units(rel, self.name):
                bag = rel['units'].get(u, {})
                unit_name = decode(bag.get('unit_name')) or u.replace('/', '_')
                req = {}
                cn = decode(bag.get('common_name'))
                sans = decode(bag.get('sans')) or []
                if isinstance(sans, str):
                    sans = [sans]
                others = decode(bag.get('cert_requests')) or {}
                received[u] = {'unit_name': unit_name, 'common_name': cn, 'sans': sans,
                               'certificate_name': decode(bag.get('certificate_name')),
                               'cert_requests': others}
                if cn:
                    cert, key = self.cert_for(u, cn, sans)
                    values['%s.server.cert' % unit_name] = cert
                    values['%s.server.key' % unit_name] = key
                if isinstance(others, dict) and others:
                    for ocn, spec in sorted(others.items()):
                        osans = (spec or {}).get('sans') or []
                        cert, key = self.cert_for(u, ocn, osans)
                        req[ocn] = {'cert': cert, 'key': key}
                    values['%s.processed_requests' % unit_name] = json.dumps(req, sort_keys=True)
            if self.set_bag(rel, me, values):
                changed.append((num, me))
        return changed

    def run(self, st, verb, args):
        if verb == 'rotate-ca':
            for p in (self.ca_crt, self.ca_key):
                if os.path.exists(p):
                    os.unlink(p)
            self.rec['issued'] = {}
            self.ensure_ca()
            return {'ca': self.ca_pem()}
        if verb == 'ca':
            return {'ca': self.ca_pem()}
        return super().run(st, verb, args)


class Containerd(Remote):
    kind = 'containerd'
    endpoint = 'docker-registry'
    interface = 'docker-registry'
    role = 'requires'

    def react(self, st):
        received = self.rec['received'] = self.received_bags(st)
        # what the real charm would configure: the lowest-numbered unit's data wins
        chosen = None
        for u in sorted(received, key=lambda x: int(x.split('/')[1])):
            if received[u].get('registry_netloc'):
                chosen = received[u]
                break
        self.rec['configured'] = chosen
        return []


class HAProxy(Remote):
    kind = 'haproxy'
    endpoint = 'reverseproxy'
    interface = 'http'
    role = 'requires'

    def react(self, st):
        received = {}
        services = {}
        for num, rel in self.relations(st):
            for u in self.our_units(rel, self.name):
                bag = rel['units'].get(u, {})
                ent = {'hostname': bag.get('hostname'), 'port': bag.get('port'),
                       'private-address': bag.get('private-address'), 'services': None}
                if bag.get('services'):
                    try:
                        ent['services'] = yaml.safe_load(bag['services'])
                    except yaml.YAMLError as e:
                        ent['services'] = {'error': str(e)}
                received[u] = ent
                if isinstance(ent['services'], list):
                    for svc in ent['services']:
                        if not isinstance(svc, dict) or 'service_name' not in svc:
                            continue
                        cur = services.setdefault(svc['service_name'], dict(svc, servers=[]))
                        for srv in svc.get('servers') or []:
                            if srv not in cur['servers']:
                                cur['servers'].append(srv)
                elif ent['private-address'] and ent['port']:
                    cur = services.setdefault(self.name + '_default', {
                        'service_name': self.name + '_default', 'servers': []})
                    cur['servers'].append([u.replace('/', '-'), ent['private-address'],
                                           ent['port'], ''])
        self.rec['received'] = received
        self.rec['services'] = services
        return []


class Nrpe(Remote):
    """The nrpe subordinate: records what the charm publishes (the checks themselves are
    files the charm writes on its own machine)."""
    kind = 'nrpe'
    endpoint = 'nrpe-external-master'
    interface = 'nrpe-external-master'
    role = 'requires'
    # Where interface:nrpe-external-master writes each check and its export for Nagios.
    NRPE_DIRS = ('/etc/nagios/nrpe.d', '/var/lib/nagios/export')

    def react(self, st):
        # The subordinate installs nagios-nrpe-server on the unit's machine and prepares
        # the folders the checks go to.
        prepared = self.rec.setdefault('prepared', [])
        for num, rel in self.relations(st):
            for unit in self.our_units(rel, self.name):
                machine = st['machines'].get(str(st['units'].get(unit, {}).get('machine')))
                if unit in prepared or not machine or not M.pid_alive(machine['holder_pid']):
                    continue
                M.ns_run(machine['holder_pid'], ['mkdir', '-p', *self.NRPE_DIRS],
                         capture_output=True)
                prepared.append(unit)
        self.rec['received'] = self.received_bags(st)
        return []


KINDS = {c.kind: c for c in (EasyRSA, Containerd, HAProxy, Nrpe)}


def make(name, rec, mdir):
    return KINDS[rec['kind']](name, rec, mdir)
