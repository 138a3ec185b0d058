"""End-to-end tests of the layer stand-ins: assemble a tiny charm with
localjuju.build, then run its generated hooks with real charms.reactive and
charmhelpers, answering the hook tools with small fake scripts backed by a
JSON state file.  Hooks run in a private mount namespace (unshare -m) whose
/etc is an overlay saying Ubuntu 24.04 and whose /usr/local/sbin,
/usr/local/share/ca-certificates and /var/lib/nagios are temporary
directories, so the host is never touched."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from localjuju import build  # noqa: E402

UNIT = 'tiny/0'

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which('unshare'),
    reason='needs root and unshare for a private mount namespace')

FAKE_TOOL = r'''#!{python}
import json, os, sys
import yaml

STATE = os.environ['FAKE_JUJU_STATE']
tool = os.path.basename(sys.argv[0])
args = sys.argv[1:]
with open(STATE) as fp:
    st = json.load(fp)
st.setdefault('calls', []).append([tool] + args)


def save():
    with open(STATE + '.tmp', 'w') as fp:
        json.dump(st, fp, indent=1)
    os.replace(STATE + '.tmp', STATE)


def opt(name):
    if name in args:
        i = args.index(name)
        value = args[i + 1]
        del args[i:i + 2]
        return value
    return None


def out(value):
    print(json.dumps(value))


fmt = opt('--format')
args = [a for a in args if not a.startswith('--format=')]
unit = os.environ['JUJU_UNIT_NAME']
rels = st.setdefault('relations', {{}})
if tool == 'config-get':
    if '--all' in args or not args:
        out(st.get('config', {{}}))
    else:
        out(st.get('config', {{}}).get(args[0]))
elif tool == 'is-leader':
    out(bool(st.get('leader')))
elif tool == 'leader-get':
    data = st.setdefault('leader_settings', {{}})
    out(data if not args or args[0] == '-' else data.get(args[0]))
elif tool == 'leader-set':
    for kv in args:
        k, _, v = kv.partition('=')
        if v:
            st['leader_settings'][k] = v
        else:
            st['leader_settings'].pop(k, None)
elif tool == 'relation-ids':
    out(sorted(r for r, d in rels.items() if d['endpoint'] == args[0]))
elif tool == 'relation-list':
    rid = opt('-r') or os.environ.get('JUJU_RELATION_ID')
    out(rels[rid]['units'] if rid in rels else [])
elif tool == 'relation-get':
    rid = opt('-r') or os.environ.get('JUJU_RELATION_ID')
    app = '--app' in args
    args = [a for a in args if a != '--app']
    key, who = (args + ['-', os.environ.get('JUJU_REMOTE_UNIT')])[:2]
    if rid not in rels:
        sys.exit(2)
    bag = rels[rid]['data'].get(who, {{}})
    out(bag if key == '-' else bag.get(key))
elif tool == 'relation-set':
    if '--help' in args:
        print('usage: relation-set [options] <key=value> ...\n  --file')
        sys.exit(0)
    rid = opt('-r') or os.environ.get('JUJU_RELATION_ID')
    app = '--app' in args
    args = [a for a in args if a != '--app']
    path = opt('--file')
    settings = {{}}
    if path:
        with (sys.stdin if path == '-' else open(path)) as fp:
            settings.update(yaml.safe_load(fp) or {{}})
    for kv in args:
        k, _, v = kv.partition('=')
        settings[k] = v or None
    who = unit.split('/')[0] if app else unit
    bag = rels[rid]['data'].setdefault(who, {{}})
    for k, v in settings.items():
        if v is None:
            bag.pop(k, None)
        else:
            bag[k] = str(v)
elif tool == 'status-set':
    st.setdefault('status', []).append(args[-2:])
elif tool == 'status-get':
    last = (st.get('status') or [['unknown', '']])[-1]
    out({{'status': last[0], 'message': last[1]}})
elif tool == 'juju-log':
    st.setdefault('log', []).append(args[-1])
elif tool == 'unit-get':
    out('127.0.0.11')
elif tool == 'network-get':
    if '--primary-address' in args or '--ingress-address' in args:
        out('127.0.0.11')
    else:
        print(yaml.safe_dump({{'bind-addresses': [{{'addresses': [
            {{'value': '127.0.0.11', 'cidr': '127.0.0.0/8'}}]}}],
            'ingress-addresses': ['127.0.0.11'],
            'egress-subnets': ['127.0.0.11/32']}}))
elif tool in ('open-port', 'close-port'):
    ports = st.setdefault('ports', [])
    if tool == 'open-port' and args[0] not in ports:
        ports.append(args[0])
    elif tool == 'close-port' and args[0] in ports:
        ports.remove(args[0])
elif tool == 'opened-ports':
    out(st.get('ports', []))
elif tool == 'application-version-set':
    st['version'] = args[-1]
elif tool == 'goal-state':
    out({{'units': {{}}, 'relations': {{}}}})
elif tool == 'update-ca-certificates':
    st['ca_updated'] = st.get('ca_updated', 0) + 1
else:
    st.setdefault('unknown', []).append([tool] + args)
save()
'''

TOOLS = ('config-get', 'is-leader', 'leader-get', 'leader-set',
         'relation-ids', 'relation-list', 'relation-get', 'relation-set',
         'status-set', 'status-get', 'juju-log', 'unit-get', 'network-get',
         'open-port', 'close-port', 'opened-ports', 'application-version-set',
         'goal-state', 'update-ca-certificates')

NAMESPACE_SETUP = r'''
set -e
mount -t overlay overlay -o lowerdir=/etc,upperdir="$NS/etc-upper",workdir="$NS/etc-work" /etc
mount --bind "$NS/sbin" /usr/local/sbin
mount --bind "$NS/cacerts" /usr/local/share/ca-certificates
mount --bind "$NS/nagios" /var/lib/nagios
cd "$JUJU_CHARM_DIR"
exec "$@"
'''

REACTIVE = '''
"""Handlers of the tiny test charm."""
import json
import os

from charmhelpers.core import hookenv
from charms import layer
from charms.leadership import leader_set
from charms.reactive import (endpoint_from_flag, hook, is_flag_set,
                             set_flag, when, when_not)
from charms.reactive.flags import get_flags


def record(name, value):
    path = os.path.join(hookenv.charm_dir(), 'record.json')
    data = json.load(open(path)) if os.path.exists(path) else {}
    data.setdefault(hookenv.hook_name(), {})[name] = value
    json.dump(data, open(path, 'w'))


@when_not('tiny.installed')
def install():
    layer.status.maintenance('installing')
    set_flag('tiny.installed')


@when('tiny.installed')
def report():
    record('flags', sorted(get_flags()))
    record('greeting', layer.options.get('tiny', 'greeting'))
    record('basic', layer.options('basic'))
    from charms.layer import tiny_lib
    tiny_lib.complain()
    layer.status.active('ready')
    hookenv.status_set('waiting', 'via hookenv')


@when('leadership.is_leader')
@when_not('leadership.set.secret')
def make_secret():
    leader_set(secret='s3cret')


@when('website.available')
def website():
    endpoint_from_flag('website.available').configure(port=5000)


@when('endpoint.docker-registry.joined')
def registry():
    endpoint_from_flag('endpoint.docker-registry.joined').set_registry_config(
        '127.0.0.11:5000', registry_url='http://127.0.0.11:5000',
        basic_user=None, basic_password=None, tls_ca=None)


@when('certificates.available')
@when_not('tiny.cert.requested')
def request_cert():
    layer.tls_client.request_server_cert(
        'tiny.example', sans=['127.0.0.11'],
        crt_path=os.path.join(hookenv.charm_dir(), 'extra', 'tls.crt'),
        key_path=os.path.join(hookenv.charm_dir(), 'extra', 'tls.key'))
    set_flag('tiny.cert.requested')


@when('nrpe-external-master.available')
def nagios(nagios):
    nagios.add_check(['/usr/lib/nagios/plugins/check_http', '-I',
                      '127.0.0.11', '-p', '5000'], name='tiny_http',
                     description='tiny http', context='juju',
                     servicegroups=None)
    nagios.added()
'''

TINY_LIB = '''
"""A layer library: statuses set here are attributed to layer "tiny_lib"."""
from charms import layer


def complain():
    layer.status.blocked('from lib')
'''


def write(path, text, mode=None):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    if mode:
        path.chmod(mode)


class Unit:
    """A built charm plus fake hook tools and a private namespace."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.layer = tmp_path / 'layer'
        self.charm = tmp_path / 'charm'
        self.ns = tmp_path / 'ns'
        self.state_file = tmp_path / 'state.json'
        self.tools = tmp_path / 'tools'
        write(self.layer / 'layer.yaml', """
            includes:
              - layer:basic
              - layer:status
              - layer:leadership
              - layer:tls-client
              - interface:http
              - interface:docker-registry
              - interface:nrpe-external-master
            defines:
              greeting:
                type: string
                default: hello
            options:
              basic:
                packages: [coreutils]
              tls-client:
                ca_certificate_path: {c}/certs/ca.crt
                server_certificate_path: {c}/certs/server.crt
                server_key_path: {c}/certs/server.key
            """.format(c=self.charm))
        write(self.layer / 'metadata.yaml', """
            name: tiny
            summary: tiny
            description: tiny
            provides:
              website:
                interface: http
              docker-registry:
                interface: docker-registry
              nrpe-external-master:
                interface: nrpe-external-master
                scope: container
            requires:
              certificates:
                interface: tls-certificates
            peers:
              peer:
                interface: tiny-peer
            """)
        write(self.layer / 'config.yaml', """
            options:
              port:
                type: int
                default: 5000
                description: port
              name:
                type: string
                default: ""
                description: name
              nothing:
                type: string
                default:
                description: null default
            """)
        write(self.layer / 'reactive' / 'tiny.py', REACTIVE)
        write(self.layer / 'lib' / 'charms' / 'layer' / 'tiny_lib.py',
              TINY_LIB)
        write(self.layer / 'actions.yaml', "hello:\n  description: hi\n")
        write(self.layer / 'actions' / 'hello', """
            #!/usr/local/sbin/charm-env python3
            import os, sys
            from charms.layer import options
            print(os.getcwd(), options.get('tiny', 'greeting'))
            """)
        build.assemble(self.layer, self.charm)

        self.tools.mkdir()
        script = self.tools / 'fake-tool'
        script.write_text(FAKE_TOOL.format(python=sys.executable))
        script.chmod(0o755)
        for tool in TOOLS:
            (self.tools / tool).symlink_to(script)
        for d in ('etc-upper', 'etc-work', 'sbin', 'cacerts', 'nagios'):
            (self.ns / d).mkdir(parents=True)
        for f in ('os-release', 'lsb-release'):
            src = Path('/tmp/ubu') / f
            text = src.read_text() if src.exists() else UBUNTU[f]
            (self.ns / 'etc-upper' / f).write_text(text)
        (self.ns / 'setup.sh').write_text(NAMESPACE_SETUP)
        self.state = {
            'config': {'port': 5000, 'name': '', 'nothing': None},
            'leader': True, 'leader_settings': {}, 'relations': {}}

    @property
    def state(self):
        return json.loads(self.state_file.read_text())

    @state.setter
    def state(self, value):
        self.state_file.write_text(json.dumps(value))

    def update(self, **kw):
        st = self.state
        st.update(kw)
        self.state = st

    def add_relation(self, rid, endpoint, remote_units, remote_data=None):
        st = self.state
        remote_app = remote_units[0].split('/')[0]
        data = {u: dict(remote_data or {}) for u in remote_units}
        data[UNIT] = {'private-address': '127.0.0.11',
                      'ingress-address': '127.0.0.11',
                      'egress-subnets': '127.0.0.11/32'}
        data[remote_app] = {}
        st['relations'][rid] = {'endpoint': endpoint, 'units': remote_units,
                                'remote_app': remote_app, 'data': data}
        self.state = st

    def set_remote(self, rid, unit, **data):
        st = self.state
        st['relations'][rid]['data'][unit].update(data)
        self.state = st

    def env(self, hook, rid=None, remote_unit=None):
        env = {
            'PATH': '{}:{}:{}'.format(self.tools,
                                      os.path.dirname(sys.executable),
                                      os.environ.get('PATH', '/usr/bin:/bin')),
            'JUJU_UNIT_NAME': UNIT, 'JUJU_CHARM_DIR': str(self.charm),
            'CHARM_DIR': str(self.charm), 'JUJU_HOOK_NAME': hook,
            'JUJU_MODEL_NAME': 'test', 'JUJU_MODEL_UUID': 'uuid-test',
            'JUJU_PRINCIPAL_UNIT': '', 'FAKE_JUJU_STATE': str(self.state_file),
            'NS': str(self.ns), 'LANG': 'C.UTF-8',
        }
        if rid:
            env.update(JUJU_RELATION=rid.split(':')[0], JUJU_RELATION_ID=rid,
                       JUJU_REMOTE_UNIT=remote_unit or '',
                       JUJU_REMOTE_APP=(remote_unit or '').split('/')[0])
        return env

    def run(self, argv, env, check=True):
        cmd = ['unshare', '-m', '--propagation', 'private', 'sh',
               str(self.ns / 'setup.sh')] + argv
        res = subprocess.run(cmd, env=env, capture_output=True, text=True,
                             cwd=str(self.charm), timeout=120)
        if check and res.returncode != 0:
            raise AssertionError('{} failed ({}):\n{}\n{}'.format(
                argv, res.returncode, res.stdout, res.stderr))
        return res

    def hook(self, hook, rid=None, remote_unit=None):
        return self.run([str(self.charm / 'hooks' / hook)],
                        self.env(hook, rid, remote_unit))

    def flags(self):
        """Flags persisted at the end of the last hook."""
        db = sqlite3.connect(str(self.charm / '.unit-state.db'))
        try:
            rows = db.execute("SELECT key FROM kv WHERE key LIKE "
                              "'reactive.states.%'").fetchall()
        finally:
            db.close()
        return {key[len('reactive.states.'):] for (key,) in rows}

    def record(self, hook):
        return json.loads((self.charm / 'record.json').read_text())[hook]


UBUNTU = {
    'os-release': 'NAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\n'
                  'ID_LIKE=debian\nVERSION_CODENAME=noble\n',
    'lsb-release': 'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=24.04\n'
                   'DISTRIB_CODENAME=noble\nDISTRIB_DESCRIPTION="Ubuntu"\n',
}


@pytest.fixture
def unit(tmp_path):
    # (Importing charms.reactive here would fail on Debian: charmhelpers refuses it outside
    # the hooks' Ubuntu namespace.)
    return Unit(tmp_path)


def test_install_hook_flags_status_and_charm_env(unit):
    unit.hook('install')
    rec = unit.record('install')
    flags = set(rec['flags'])
    # layer:basic config flags, as seen during the hook
    assert {'config.changed', 'config.changed.port', 'config.set.port',
            'config.default.port', 'config.default.name',
            'config.default.nothing'} <= flags
    assert 'config.set.name' not in flags
    # layer:leadership
    assert {'leadership.is_leader', 'leadership.set.secret',
            'leadership.changed.secret', 'leadership.changed'} <= flags
    assert unit.state['leader_settings'] == {'secret': 's3cret'}
    # layer options as built
    assert rec['greeting'] == 'hello'
    assert rec['basic']['packages'] == ['coreutils']
    # layer:status: maintenance at once, then one final status: blocked
    # beats waiting and active
    assert unit.state['status'] == [['maintenance', 'installing'],
                                    ['blocked', 'from lib']]
    assert not unit.state.get('unknown'), unit.state['unknown']

    # charm-env was written in the unit's /usr/local/sbin, and actions work
    charm_env = unit.ns / 'sbin' / 'charm-env'
    assert charm_env.exists() and os.access(charm_env, os.X_OK)
    assert os.path.islink(unit.ns / 'sbin' / 'charms.reactive')
    res = unit.run([str(unit.charm / 'actions' / 'hello')],
                   unit.env('hello'))
    assert res.stdout.split() == [str(unit.charm), 'hello']
    assert (unit.charm / 'wheelhouse' / '.bootstrapped').exists()

    # config flags were cleared at hook end; next hook sees no change
    unit.hook('update-status')
    flags = set(unit.record('update-status')['flags'])
    assert 'config.changed' not in flags and 'config.set.port' in flags
    assert 'leadership.changed' not in flags
    assert 'leadership.set.secret' in flags

    # a follower learns changed leader settings
    unit.update(leader=False, leader_settings={'secret': 'other'})
    unit.update(config={'port': 6000, 'name': 'x', 'nothing': None})
    unit.hook('leader-settings-changed')
    flags = set(unit.record('leader-settings-changed')['flags'])
    assert {'leadership.changed.secret', 'leadership.changed',
            'config.changed.port', 'config.set.name',
            'config.changed.name'} <= flags
    assert 'leadership.is_leader' not in flags
    assert 'config.default.port' not in flags


def test_relations_http_registry_nrpe(unit):
    unit.hook('install')
    unit.add_relation('website:3', 'website', ['haproxy/0'])
    unit.add_relation('docker-registry:4', 'docker-registry',
                      ['containerd/0'])
    unit.add_relation('nrpe-external-master:5', 'nrpe-external-master',
                      ['nrpe/0'], {'nagios_hostname': 'nagios-tiny'})
    unit.hook('website-relation-joined', 'website:3', 'haproxy/0')
    ours = unit.state['relations']['website:3']['data'][UNIT]
    assert ours['port'] == '5000'
    assert ours['hostname'] == ours['private-address'] == '127.0.0.11'
    assert 'website.available' in unit.flags()

    unit.hook('docker-registry-relation-joined', 'docker-registry:4',
              'containerd/0')
    bag = unit.state['relations']['docker-registry:4']['data'][UNIT]
    assert json.loads(bag['registry_netloc']) == '127.0.0.11:5000'
    assert json.loads(bag['registry_url']) == 'http://127.0.0.11:5000'
    # to_publish JSON-encodes: None is published as null
    assert bag['basic_user'] == bag['tls_ca'] == 'null'

    unit.hook('nrpe-external-master-relation-joined',
              'nrpe-external-master:5', 'nrpe/0')
    assert 'nrpe-external-master.available' in unit.flags()
    check = (unit.ns / 'etc-upper' / 'nagios' / 'nrpe.d' /
             'check_tiny_http.cfg').read_text()
    assert ('command[tiny_http]=/usr/lib/nagios/plugins/check_http -I '
            '127.0.0.11 -p 5000') in check
    service = (unit.ns / 'nagios' / 'export' /
               'service__tiny-0_tiny_http.cfg').read_text()
    assert 'nagios-tiny' in service and 'check_nrpe!tiny_http' in service
    bag = unit.state['relations']['nrpe-external-master:5']['data'][UNIT]
    assert 'timestamp' in bag
    assert not Path('/etc/nagios/nrpe.d/check_tiny_http.cfg').exists()

    unit.hook('nrpe-external-master-relation-departed',
              'nrpe-external-master:5', 'nrpe/0')
    assert 'nrpe-external-master.available' not in unit.flags()


def test_tls_client(unit):
    unit.hook('install')
    unit.add_relation('certificates:7', 'certificates', ['easyrsa/0'])
    unit.hook('certificates-relation-joined', 'certificates:7', 'easyrsa/0')
    bag = unit.state['relations']['certificates:7']['data'][UNIT]
    assert bag['unit_name'] == 'tiny_0'
    assert bag['common_name'] == 'tiny.example'
    assert json.loads(bag['sans']) == ['127.0.0.11']
    assert bag['certificate_name']
    flags = unit.flags()
    assert 'certificates.available' in flags
    assert 'certificates.ca.available' not in flags

    unit.set_remote('certificates:7', 'easyrsa/0', **{
        'ca': 'CA-PEM', 'chain': '',
        'tiny_0.server.cert': 'CERT-PEM', 'tiny_0.server.key': 'KEY-PEM'})
    unit.hook('certificates-relation-changed', 'certificates:7', 'easyrsa/0')
    flags = unit.flags()
    assert {'certificates.ca.available', 'certificates.server.cert.available',
            'certificates.server.certs.available', 'tls_client.ca.saved',
            'tls_client.ca.written', 'tls_client.server.certificate.saved',
            'tls_client.server.key.saved', 'tls_client.certs.saved',
            'tls_client.server.certs.changed', 'tls_client.certs.changed',
            'tls_client.server.cert.tiny.example.changed',
            'tls_client.ca_installed'} <= flags
    assert 'certificates.certs.changed' not in flags  # consumed by tls-client
    certs = unit.charm / 'certs'
    assert (certs / 'ca.crt').read_text() == 'CA-PEM\n'
    assert (certs / 'server.crt').read_text() == 'CERT-PEM'
    assert (certs / 'server.key').read_text() == 'KEY-PEM'
    assert (unit.charm / 'extra' / 'tls.crt').read_text() == 'CERT-PEM'
    assert (unit.charm / 'extra' / 'tls.key').read_text() == 'KEY-PEM'
    assert (unit.ns / 'cacerts' / 'tiny.crt').read_text() == 'CA-PEM\n'
    assert unit.state['ca_updated'] == 1

    # rotation rewrites the files
    unit.set_remote('certificates:7', 'easyrsa/0',
                    **{'tiny_0.server.cert': 'CERT2'})
    unit.hook('certificates-relation-changed', 'certificates:7', 'easyrsa/0')
    assert (certs / 'server.crt').read_text() == 'CERT2'
    assert (unit.charm / 'extra' / 'tls.crt').read_text() == 'CERT2'
    assert unit.state['ca_updated'] == 1

    # a second request goes into cert_requests
    assert 'cert_requests' not in \
        unit.state['relations']['certificates:7']['data'][UNIT]


def test_status_outside_hook_sets_immediately(unit):
    unit.hook('install')
    script = unit.tmp / 'st.py'
    script.write_text(textwrap.dedent('''
        import sys
        sys.path.insert(0, 'lib')
        from charms.layer import status
        status.waiting('from action')
        status.active('second')
        '''))
    unit.run([sys.executable, str(script)], unit.env('x'))
    # as upstream: every call re-sends the winner of everything requested
    # in this process, and waiting outranks active
    assert unit.state['status'][-2:] == [['waiting', 'from action'],
                                         ['waiting', 'from action']]
