"""Hook sequencing, transactions, actions and scripted remotes (hooks run on the host)."""
import json
import os
import subprocess
import threading
import textwrap
import time

import pytest

from tests.support.fake_charm import hooks_log, write_charm

from localjuju import LocalJujuError, Model
from localjuju.cli import main as cli_main


def names(log):
    return [x[0] for x in log]


def test_deploy_sequence_and_leadership(model):
    assert names(hooks_log(model, 'fake/0'))[:5] == [
        'install', 'leader-elected', 'config-changed', 'start', 'peer-relation-created']
    log1 = hooks_log(model, 'fake/1')
    assert names(log1)[:5] == [
        'install', 'leader-settings-changed', 'config-changed', 'start', 'peer-relation-created']
    joined = [x for x in log1 if x[0] == 'peer-relation-joined']
    assert joined[0][1:3] == ['peer:0', 'fake/0'] and json.loads(joined[0][4]) == ['fake/0']
    st = model.status()
    units = st['applications']['fake']['units']
    assert units['fake/0']['leader'] and not units['fake/1']['leader']
    assert units['fake/0']['status'] == 'active' and units['fake/0']['message'] == 'port 5000'
    assert units['fake/1']['address'] == '127.0.0.12'
    assert units['fake/0']['open-ports'] == ['5000/tcp']
    peer = st['relations'][0]
    assert peer['units']['fake/1']['hello'] == 'fake/1'
    assert peer['units']['fake/0']['ingress-address'] == '127.0.0.11'
    assert model.status_history('fake/0')[-1] == ('active', 'port 5000')


def test_failed_hook_rolls_back_and_error_clears(model):
    before = model.status()
    r = model.hook('fake/0', 'fail-me')
    assert r['rc'] == 3
    st = model.status()
    u = st['applications']['fake']['units']['fake/0']
    assert u['status'] == 'error' and u['message'] == 'hook failed: "fail-me"'
    assert u['open-ports'] == ['5000/tcp']          # open-port 9999 rolled back
    assert 'doomed' not in st['relations'][0]['units']['fake/0']   # relation-set rolled back
    assert ('blocked', 'should not stick') not in model.status_history('fake/0')
    assert model.status_history('fake/0')[-1] == ('error', 'hook failed: "fail-me"')
    assert before['relations'] == st['relations']
    model.hook('fake/0', 'update-status')
    u = model.status()['applications']['fake']['units']['fake/0']
    assert (u['status'], u['message']) == ('active', 'port 5000')


def test_config_fires_config_changed_everywhere(model):
    with pytest.raises(LocalJujuError):
        model.config('fake', {'nope': 1})
    with pytest.raises(LocalJujuError):
        model.config('fake', {'port': 'abc'})
    cfg = model.config('fake', {'port': '6000'})
    assert cfg['port'] == 6000
    for u in ('fake/0', 'fake/1'):
        assert names(hooks_log(model, u))[-1] == 'config-changed'
        assert '6000/tcp' in model.status()['applications']['fake']['units'][u]['open-ports']
    assert model.config('fake', reset=['port'])['port'] == 5000


def test_actions_types_validation_and_failure(model):
    params = Model.parse_params(['n=5', 'b=false', 's=hello', 'o.x=1'])
    assert params == {'n': 5, 'b': False, 's': 'hello', 'o': {'x': 1}}
    r = model.run('fake/0', 'echo', params)
    assert r['status'] == 'completed', r
    assert json.loads(r['results']['all']) == {'n': 5, 'b': False, 's': 'hello', 'o': {'x': 1}}
    assert r['results']['nested'] == {'deeper': {'key': 'v'}}
    assert r['results']['got'] == {'n': '5'}
    assert r['log'] == ['logged']
    # defaults are filled in like juju does
    r = model.run('fake/1', 'echo', {})
    assert json.loads(r['results']['all']) == {'b': True}
    with pytest.raises(LocalJujuError, match='additional property'):
        model.run('fake/0', 'echo', {'bogus': 1})
    with pytest.raises(LocalJujuError, match='type'):
        model.run('fake/0', 'echo', {'n': 'five'})
    with pytest.raises(LocalJujuError):
        model.run('fake/0', 'nosuch', {})
    r = model.run('fake/0', 'fail', {})
    assert r['status'] == 'failed' and r['message'] == 'it broke'
    assert r['results'] == {'partial': 'yes'}


def test_cli_run_exit_codes(model, capsys):
    home, name = model.home, model.name
    assert cli_main(['--home', home, '-m', name, '-q', 'run', 'fake/0', 'echo', 'n=3']) == 0
    out = capsys.readouterr().out
    assert 'status: completed' in out
    assert cli_main(['--home', home, '-m', name, '-q', 'run', 'fake/0', 'fail']) == 1
    assert cli_main(['--home', home, '-m', name, '-q', 'run', 'fake/0', 'echo', 'n=x']) == 1


def test_integrate_remotes_and_remove_relation(model, tmp_path):
    model.integrate('fake', 'easyrsa')
    st = model.status()
    rel = [r for r in st['relations'] if 'easyrsa:client' in r['endpoints']][0]
    er = rel['units']['easyrsa/0']
    assert er['private-address'] == '127.0.0.101'
    cert = er['fake_0.server.cert']
    assert er['ca'].startswith('-----BEGIN CERTIFICATE-----')
    assert er['fake_1.server.key'].startswith('-----BEGIN')
    p = tmp_path / 'c.pem'
    p.write_text(cert)
    text = subprocess.run(['openssl', 'x509', '-noout', '-text', '-in', str(p)],
                          capture_output=True, text=True, check=True).stdout
    assert 'IP Address:127.0.0.11' in text and 'DNS:foo.local' in text
    ca = tmp_path / 'ca.pem'
    ca.write_text(er['ca'])
    assert subprocess.run(['openssl', 'verify', '-CAfile', str(ca), str(p)],
                          capture_output=True).returncode == 0
    log0 = names(hooks_log(model, 'fake/0'))
    i = log0.index('certificates-relation-created')
    assert log0[i + 1:i + 3] == ['certificates-relation-joined', 'certificates-relation-changed']
    assert log0.count('certificates-relation-changed') >= 2   # easyrsa answered
    # rotating the CA re-issues and fires -changed
    old_ca = er['ca']
    model.remote_run('easyrsa', 'rotate-ca')
    rel = [r for r in model.status()['relations'] if 'easyrsa:client' in r['endpoints']][0]
    assert rel['units']['easyrsa/0']['ca'] != old_ca
    # containerd and haproxy record what they receive
    model.integrate('fake', 'containerd')
    model.integrate('fake:website', 'haproxy')
    apps = model.status()['applications']
    assert set(apps['containerd']['received']) == {'fake/0', 'fake/1'}
    assert apps['haproxy']['received']['fake/1']['port'] == '5000'
    assert apps['haproxy']['units']['haproxy/0']['address'] == '127.0.0.103'
    # remove-relation: departed (departing unit set, no longer listed) then broken
    model.remove_relation('fake', 'easyrsa')
    log0 = hooks_log(model, 'fake/0')
    dep = [x for x in log0 if x[0] == 'certificates-relation-departed'][-1]
    assert dep[2] == 'easyrsa/0' and dep[3] == 'easyrsa/0' and json.loads(dep[4]) == []
    assert log0[-1][0] == 'certificates-relation-broken'
    assert not [r for r in model.status()['relations'] if 'easyrsa:client' in r['endpoints']]


def test_leader_set_and_remove_unit(model):
    model.add_unit('fake')
    log2 = names(hooks_log(model, 'fake/2'))
    assert log2[:4] == ['install', 'leader-settings-changed', 'config-changed', 'start']
    assert log2.count('peer-relation-joined') == 2
    model.remove_unit('fake/0')
    st = model.status()
    assert sorted(st['applications']['fake']['units']) == ['fake/1', 'fake/2']
    assert st['applications']['fake']['units']['fake/1']['leader']
    log1 = hooks_log(model, 'fake/1')
    dep = [x for x in log1 if x[0] == 'peer-relation-departed']
    assert dep and dep[-1][2:4] == ['fake/0', 'fake/0'] and json.loads(dep[-1][4]) == ['fake/2']
    assert names(log1)[-1] == 'leader-elected'
    assert list(st['relations'][0]['units']) == ['fake/1', 'fake/2']


def test_action_runs_while_another_units_hook_runs(model):
    other = Model(home=model.home, name=model.name)
    t = threading.Thread(target=other.hook, args=('fake/0', 'slow'))
    t.start()
    try:
        time.sleep(0.8)
        start = time.time()
        r = model.run('fake/1', 'echo', {})
        assert r['status'] == 'completed'
        assert time.time() - start < 2.0 and t.is_alive()   # not serialized behind fake/0
        start = time.time()
        model.run('fake/0', 'echo', {})                     # same unit: waits for the hook
        assert not t.is_alive()
    finally:
        t.join()


def test_refresh_and_upgrade_machine(model, tmp_path):
    src = model.load()['apps']['fake']['charm_source']
    with open(src + '/NEWFILE', 'w') as f:
        f.write('v2\n')
    model.refresh('fake')
    for u in ('fake/0', 'fake/1'):
        log = names(hooks_log(model, u))        # kept across the refresh
        assert log[-2:] == ['upgrade-charm', 'config-changed']
        assert (tmp_path / 'home' / 'models' / 't' / 'units' / u.replace('/', '-') / 'charm' /
                'NEWFILE').read_text() == 'v2\n'
    model.upgrade_machine(1, 'prepare')
    model.upgrade_machine(1, 'complete')
    assert names(hooks_log(model, 'fake/1'))[-2:] == ['pre-series-upgrade',
                                                      'post-series-upgrade']


def test_refresh_removes_the_old_charms_files_and_keeps_run_time_files(model):
    src = model.load()['apps']['fake']['charm_source']
    unit_dir = model.load()['units']['fake/0']['charm_dir']
    with open(src + '/OLDFILE', 'w') as f:
        f.write('v1\n')
    model.refresh('fake')
    with open(unit_dir + '/made-at-run-time', 'w') as f:
        f.write('state\n')
    os.unlink(src + '/OLDFILE')
    model.refresh('fake')
    assert not os.path.exists(unit_dir + '/OLDFILE')            # part of the old charm only
    assert os.path.exists(unit_dir + '/made-at-run-time')       # never part of a charm
    assert os.path.exists(unit_dir + '/hooks.log')


def _switch_target(tmp_path, metadata):
    other = write_charm(str(tmp_path / 'other'))
    with open(os.path.join(other, 'metadata.yaml'), 'w') as f:
        f.write(textwrap.dedent(metadata))
    return other


def test_refresh_to_another_charm_needs_switch_and_keeps_established_relations(model,
                                                                               tmp_path):
    model.integrate('fake', 'easyrsa')                  # certificates: tls-certificates
    renamed = _switch_target(tmp_path, """
        name: other
        requires:
          cert-provider: {interface: tls-certificates}
        peers:
          peer: {interface: fake-peer}
        """)
    with pytest.raises(LocalJujuError, match='--switch'):
        model.refresh('fake', path=renamed)
    with pytest.raises(LocalJujuError, match='would break relation .*certificates.*'
                                             'no endpoint "certificates"'):
        model.refresh('fake', switch=renamed)
    assert model.load()['apps']['fake']['charm_name'] == 'fake'     # nothing changed
    model.remove_relation('fake', 'easyrsa')
    model.refresh('fake', switch=renamed)
    assert model.load()['apps']['fake']['charm_name'] == 'other'
    assert names(hooks_log(model, 'fake/0'))[-2:] == ['upgrade-charm', 'config-changed']


def test_switch_replaces_a_peer_relation_whose_interface_changed(model, tmp_path):
    before = [r for r in model.status()['relations'] if r['peer']]
    assert [r['interface'] for r in before] == ['fake-peer']
    target = _switch_target(tmp_path, """
        name: other
        provides:
          website: {interface: http}
        requires:
          certificates: {interface: tls-certificates}
        peers:
          peer: {interface: other-peer}
        """)
    model.refresh('fake', switch=target)
    after = [r for r in model.status()['relations'] if r['peer']]
    assert [r['interface'] for r in after] == ['other-peer']
    assert after[0]['id'] != before[0]['id']
    assert sorted(after[0]['units']) == ['fake/0', 'fake/1']
    log = names(hooks_log(model, 'fake/0'))
    assert log.index('upgrade-charm') < log.index('peer-relation-joined', log.index(
        'upgrade-charm'))


def test_models_in_different_homes_never_share_an_address(tmp_path):
    from localjuju import addresses
    first = addresses.lease(str(tmp_path / 'home-a' / 'm'), addresses.MACHINES)
    (tmp_path / 'home-b' / 'm').mkdir(parents=True)
    (tmp_path / 'home-a' / 'm').mkdir(parents=True)
    second = addresses.lease(str(tmp_path / 'home-b' / 'm'), addresses.MACHINES)
    assert (first, second) == ('127.0.0.11', '127.0.0.12')
    addresses.release_all(str(tmp_path / 'home-a' / 'm'))
    assert addresses.lease(str(tmp_path / 'home-c'), addresses.MACHINES) == '127.0.0.11'


def test_a_lease_whose_model_is_gone_is_taken_over(tmp_path):
    from localjuju import addresses
    assert addresses.lease(str(tmp_path / 'vanished'), addresses.REMOTES) == '127.0.0.101'
    (tmp_path / 'alive').mkdir()
    assert addresses.lease(str(tmp_path / 'alive'), addresses.REMOTES) == '127.0.0.101'
