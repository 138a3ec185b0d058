"""Hook tools against a state dir, called exactly as charmhelpers 1.2.1 calls them."""
import json
import os
import subprocess
import sys

from tests.support.fake_charm import write_charm

from localjuju import Model
from localjuju import state as S


def ctx_env(m, unit, hook='update-status', rel=None, remote=None, departing=None):
    st = m.load()
    ev = {'unit': unit, 'hook': hook, 'rel': rel, 'remote': remote,
          'remote_app': S.app_of(remote) if remote else None, 'departing': departing}
    path = m._context(st, unit, ev if rel is not None else {'hook': hook})
    env = m._env(st, unit, path, hook=hook, ev=ev)
    return path, env


def tool(env, *argv, stdin=None):
    return subprocess.run(list(argv), env=env, capture_output=True, text=True, input=stdin,
                          cwd=env['CHARM_DIR'])


CHARMHELPERS_SNIPPET = r'''
import json, sys
from charmhelpers.core import hookenv as h
# without a machine there is no /var/lib/juju/tools/machine-*/jujud (machines provide one)
h.juju_version = lambda: '3.1.6-ubuntu-amd64'
out = {}
out['config'] = dict(h.config())
out['relation_ids'] = h.relation_ids('peer')
out['related'] = h.related_units()
out['remote_bag'] = h.relation_get()
out['own_addr'] = h.relation_get('private-address', h.local_unit())
out['missing_unit'] = h.relation_get(unit='fake/9')
out['missing_key'] = h.relation_get('nope', 'fake/1')
h.relation_set(relation_settings={'a': 'x', 'b': 2, 'private-address': None})
out['own_after_set'] = h.relation_get(unit=h.local_unit())
out['app_bag'] = h.relation_get(app='fake')
h.relation_set(relation_settings={'appkey': 'v'}, app=True)
out['is_leader'] = h.is_leader()
h.leader_set({'k': 'v', 'secret': None})
out['leader_get'] = h.leader_get()
out['leader_k'] = h.leader_get('k')
out['network'] = h.network_get('website')
out['primary'] = h.network_get_primary_address('website')
try:
    h.network_get_primary_address('nosuch')
    out['nobinding'] = 'no error'
except h.NoNetworkBinding:
    out['nobinding'] = 'NoNetworkBinding'
out['unit_ip'] = h.unit_private_ip()
out['public_ip'] = h.unit_public_ip()
out['ingress'] = h.ingress_address(rid=h.relation_id(), unit=h.local_unit())
out['egress'] = h.egress_subnets(rid=h.relation_id(), unit=h.local_unit())
h.status_set('blocked', 'need things')
out['status_get'] = list(h.status_get())
h.open_port(8443)
h.open_port(5000, 'UDP')
h.close_port(5000)
out['opened'] = h.opened_ports()
out['resource'] = h.resource_get('img')
h.application_version_set('2.8.2')
h.log('hello from charmhelpers', level=h.WARNING)
out['storage'] = h.storage_list()
out['goal'] = sorted(h.goal_state()['units'])
out['remote_service'] = h.remote_service_name()
print(json.dumps(out))
'''


def test_charmhelpers_argv_shapes(model):
    path, env = ctx_env(model, 'fake/0', hook='peer-relation-changed', rel='0', remote='fake/1')
    r = subprocess.run([sys.executable, '-c', CHARMHELPERS_SNIPPET],
                       env=env, capture_output=True, text=True, cwd=env['CHARM_DIR'])
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out['config'] == {'port': 5000, 'name': None, 'flag': False}
    assert out['relation_ids'] == ['peer:0']
    assert out['related'] == ['fake/1']
    assert out['remote_bag']['private-address'] == '127.0.0.12'
    assert out['remote_bag']['hello'] == 'fake/1'
    assert out['own_addr'] == '127.0.0.11'
    assert out['missing_unit'] is None
    assert out['missing_key'] is None
    assert out['own_after_set']['a'] == 'x' and out['own_after_set']['b'] == '2'
    assert 'private-address' not in out['own_after_set']
    assert out['is_leader'] is True
    assert out['leader_get'] == {'k': 'v'}
    assert out['leader_k'] == 'v'
    assert out['network']['ingress-addresses'] == ['127.0.0.11']
    assert out['network']['bind-addresses'][0]['addresses'][0]['value'] == '127.0.0.11'
    assert out['primary'] == '127.0.0.11'
    assert out['nobinding'] == 'NoNetworkBinding'
    assert out['unit_ip'] == out['public_ip'] == '127.0.0.11'
    assert out['ingress'] == '127.0.0.11'
    assert out['egress'] == ['127.0.0.11/32']
    assert out['status_get'] == ['blocked', 'need things']
    assert out['opened'] == ['8443/tcp', '5000/udp'] or out['opened'] == ['5000/udp', '8443/tcp']
    assert out['resource'] is False
    assert out['storage'] == []
    assert out['goal'] == ['fake/0', 'fake/1']
    assert out['remote_service'] == 'fake'
    # nothing is committed until the hook succeeds
    st = model.load()
    assert 'a' not in st['relations']['0']['units']['fake/0']
    assert st['units']['fake/0']['workload']['status'] == 'active'
    # commit as the runner does after exit 0
    ctx = S.read_json(path)
    follow = model._commit('fake/0', 'peer-relation-changed', ctx, 0)
    st = model.load()
    bag = st['relations']['0']['units']['fake/0']
    assert bag['a'] == 'x' and 'private-address' not in bag
    assert st['relations']['0']['apps']['fake'] == {'appkey': 'v'}
    assert st['apps']['fake']['leader_settings'] == {'k': 'v'}
    assert st['apps']['fake']['version'] == '2.8.2'
    assert st['units']['fake/0']['workload'] == {'status': 'blocked', 'message': 'need things'}
    assert st['units']['fake/0']['ports'] in (['8443/tcp', '5000/udp'], ['5000/udp', '8443/tcp'])
    hooks = {(f['unit'], f['hook']) for f in follow}
    assert ('fake/1', 'leader-settings-changed') in hooks
    assert ('fake/1', 'peer-relation-changed') in hooks
    assert 'WARNING juju-log' in model.log('fake/0')


def test_juju_log_appends_in_the_units_log_as_juju_formats_it(model):
    _, env = ctx_env(model, 'fake/0', hook='peer-relation-changed', rel='0', remote='fake/1')
    assert tool(env, 'juju-log', '-l', 'warning', 'disk', 'low').returncode == 0
    assert tool(env, 'juju-log', '--debug', 'tracer: set flag x').returncode == 0
    assert tool(env, 'juju-log', '--log-level=ERROR', '--', '-l is text here').returncode == 0
    _, plain = ctx_env(model, 'fake/0')
    assert tool(plain, 'juju-log', 'no relation').returncode == 0
    missing = tool(plain, 'juju-log', '-l', 'INFO')
    assert missing.returncode == 2 and 'no message' in missing.stderr
    lines = [line.split(' ', 2)[2] for line in model.log('fake/0').splitlines()[-4:]]
    assert lines == ['WARNING juju-log: peer:0: disk low',
                     'DEBUG juju-log: peer:0: tracer: set flag x',
                     'ERROR juju-log: peer:0: -l is text here',
                     'INFO juju-log: no relation']


def test_relation_set_help_and_file_null_deletes(model):
    path, env = ctx_env(model, 'fake/0', hook='peer-relation-changed', rel='0', remote='fake/1')
    r = tool(env, 'relation-set', '--help')
    assert r.returncode == 0 and '--file' in r.stdout
    f = os.path.join(os.path.dirname(path), 'settings.yaml')
    with open(f, 'w') as fh:
        fh.write('keep: "1"\ngone: null\nhello: null\nmulti: |\n  line1\n  line2\n')
    assert tool(env, 'relation-set', '-r', 'peer:0', 'gone=soon').returncode == 0
    r = tool(env, 'relation-set', '-r', 'peer:0', '--file', f)
    assert r.returncode == 0, r.stderr
    bag = json.loads(tool(env, 'relation-get', '--format=json', '-r', 'peer:0', '-',
                          'fake/0').stdout)
    assert bag['keep'] == '1' and bag['multi'] == 'line1\nline2\n'
    assert 'gone' not in bag and 'hello' not in bag
    # key=value form; empty value deletes
    assert tool(env, 'relation-set', '-r', 'peer:0', 'keep=', 'x=y=z').returncode == 0
    bag = json.loads(tool(env, 'relation-get', '--format=json', '-r', 'peer:0', '-',
                          'fake/0').stdout)
    assert 'keep' not in bag and bag['x'] == 'y=z'
    # stdin form
    assert tool(env, 'relation-set', '-r', 'peer:0', '--file', '-',
                stdin='fromstdin: yes\n').returncode == 0
    assert json.loads(tool(env, 'relation-get', '--format=json', '-r', 'peer:0', 'fromstdin',
                           'fake/0').stdout) == 'true'


def test_relation_get_shapes_and_not_found(model):
    path, env = ctx_env(model, 'fake/1', hook='peer-relation-changed', rel='0', remote='fake/0')
    r = tool(env, 'relation-get', '--format=json', '-r', 'peer:0', '-', 'fake/7')
    assert r.returncode == 2
    r = tool(env, 'relation-get', '--format=json', '-r', 'peer:0', 'hello', 'fake/0')
    assert r.returncode == 0 and json.loads(r.stdout) == 'fake/0'
    r = tool(env, 'relation-get', '-r', 'peer:0', 'hello', 'fake/0')
    assert r.stdout == 'fake/0\n'
    r = tool(env, 'relation-get', '--format=json', '-')
    assert json.loads(r.stdout)['hello'] == 'fake/0'
    r = tool(env, 'relation-get', '--format=json', '--app', '-r', 'peer:0', '-', 'fake')
    assert r.returncode == 0 and json.loads(r.stdout) == {}
    r = tool(env, 'relation-list', '--format=json', '-r', 'peer:99')
    assert r.returncode == 2
    assert json.loads(tool(env, 'relation-ids', '--format=json', 'website').stdout) == []
    assert json.loads(tool(env, 'is-leader', '--format=json').stdout) is False
    r = tool(env, 'leader-set', 'a=b')
    assert r.returncode != 0 and 'not the leader' in r.stderr
    assert json.loads(tool(env, 'leader-get', '--format=json', 'secret').stdout) == 's3cr3t'
    r = tool(env, 'status-set', 'bogus', 'msg')
    assert r.returncode != 0
    r = tool(env, 'network-get', 'website', '--ingress-address', '--format', 'yaml')
    assert r.stdout.strip() == '127.0.0.12'
    r = tool(env, 'config-get', '--format=json')
    assert json.loads(r.stdout) == {'port': 5000, 'flag': False}
    r = tool(env, 'config-get', 'port', '--format=json')
    assert json.loads(r.stdout) == 5000
    r = tool(env, 'status-get', '--format=json', '--include-data')
    assert json.loads(r.stdout) == {'status': 'active', 'message': 'port 5000', 'status-data': {}}


def test_resource_get_prints_path(tmp_path):
    charm = write_charm(str(tmp_path / 'charm'))
    res = tmp_path / 'whatever.tar'
    res.write_bytes(b'data')
    m = Model(home=str(tmp_path / 'home'), name='t', machines=False)
    m.deploy(charm, 'fake', n=1, resources={'img': str(res)})
    path, env = ctx_env(m, 'fake/0')
    r = tool(env, 'resource-get', 'img')
    assert r.returncode == 0 and r.stdout.endswith('/img.tar')
    with open(r.stdout, 'rb') as f:
        assert f.read() == b'data'
    assert tool(env, 'resource-get', 'nope').returncode != 0
