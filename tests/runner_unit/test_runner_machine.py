"""End to end: a tiny built charm (plain bash hooks) deployed on a real machine namespace
with its own dockerd."""
import os
import subprocess
import textwrap

import pytest

from tests.support.fake_charm import COMMON

from localjuju import Model
from localjuju import machine as M


HOOKS = ('install', 'leader-elected', 'config-changed', 'start', 'stop', 'remove',
         'update-status', 'peer-relation-created', 'peer-relation-joined',
         'peer-relation-changed')


def write_tiny_charm(root):
    os.makedirs(os.path.join(root, 'hooks'))
    os.makedirs(os.path.join(root, 'actions'))
    files = {
        'metadata.yaml': textwrap.dedent('''
            name: tiny
            summary: tiny
            description: tiny
            provides:
              website: {interface: http}
            peers:
              peer: {interface: tiny-peer}
            '''),
        'config.yaml': 'options:\n  port: {type: int, default: 5000}\n',
        'actions.yaml': 'where: {}\n',
        'hooks/common': COMMON,
        'actions/where': textwrap.dedent('''\
            #!/bin/bash
            set -e
            action-set cwd="$(pwd)" os="$(. /etc/os-release; echo $VERSION_CODENAME)" \\
              images="$(docker images --format '{{.Repository}}:{{.Tag}}' | sort | tr '\\n' ' ')" \\
              sbin="$(ls /usr/local/sbin | tr '\\n' ' ')" \\
              etc="$(findmnt -n -o FSTYPE /etc)" lsb="$(. /etc/lsb-release; echo $DISTRIB_CODENAME)"
            '''),
    }
    for rel, text in files.items():
        with open(os.path.join(root, rel), 'w') as f:
            f.write(text)
    os.chmod(os.path.join(root, 'hooks', 'common'), 0o755)
    os.chmod(os.path.join(root, 'actions', 'where'), 0o755)
    for hook in HOOKS:
        os.symlink('common', os.path.join(root, 'hooks', hook))
    return root


@pytest.fixture
def tiny_image(tmp_path):
    """A one-file image made locally (no registry access) and saved as an archive."""
    tag = 'localjuju-test-tiny:%d' % os.getpid()
    src = tmp_path / 'rootfs'
    src.mkdir()
    (src / 'hello.txt').write_text('hi\n')
    tar = subprocess.run(['tar', '-C', str(src), '-c', '.'], capture_output=True, check=True)
    subprocess.run(['docker', 'import', '-', tag], input=tar.stdout, check=True,
                   capture_output=True)
    archive = tmp_path / 'tiny.tar'
    subprocess.run(['docker', 'save', '-o', str(archive), tag], check=True)
    yield tag, str(archive)
    subprocess.run(['docker', 'rmi', '-f', tag], capture_output=True)


def test_deploy_on_real_machine_and_destroy(tmp_path, tiny_image):
    assert os.geteuid() == 0, 'machines need root (mount namespaces)'
    assert subprocess.run(['docker', 'info'], capture_output=True).returncode == 0, \
        'the host dockerd must be running'
    tag, archive = tiny_image
    charm = write_tiny_charm(str(tmp_path / 'charm'))
    m = Model(home=str(tmp_path / 'home'), name='e2e', machines=True)
    pids = []
    try:
        m.deploy(charm, 'tiny', n=2, preload_image=archive)
        st = m.load()
        for n, rec in st['machines'].items():
            pids += [rec['holder_pid'], rec['dockerd_pid']]
            assert M.alive(rec)
        status = m.status()
        units = status['applications']['tiny']['units']
        assert units['tiny/0']['status'] == 'active', m.log('tiny/0')
        assert units['tiny/0']['message'] == 'port 5000'
        assert units['tiny/1']['address'] == '127.0.0.12'
        assert units['tiny/0']['leader']
        with open(os.path.join(st['units']['tiny/0']['charm_dir'], 'hooks.log')) as f:
            order = [line.split('|')[0] for line in f]
        assert order[:5] == ['install', 'leader-elected', 'config-changed', 'start',
                             'peer-relation-created']
        assert 'peer-relation-joined' in order
        with open(os.path.join(st['units']['tiny/0']['charm_dir'], 'os.log')) as f:
            assert f.read().strip() == 'ID=ubuntu'
        assert 'installing in %s' % st['units']['tiny/0']['charm_dir'] in m.log('tiny/0')
        # actions run inside the machine: Ubuntu /etc, the machine's own engine
        r = m.run('tiny/1', 'where')
        assert r['status'] == 'completed', r
        assert r['results']['cwd'] == st['units']['tiny/1']['charm_dir']
        assert r['results']['os'] == 'noble'
        assert r['results']['images'].split() == [tag]
        host_images = subprocess.run(['docker', 'images', '-q'], capture_output=True,
                                     text=True).stdout.split()
        assert len(host_images) >= 1
        assert r['results']['etc'] == 'overlay' and r['results']['lsb'] == 'noble'
        # the host's mounts are untouched
        assert subprocess.run(['findmnt', '-n', '/etc'], capture_output=True).returncode != 0
    finally:
        m.destroy()
    for pid in pids:
        assert not M.pid_alive(pid), 'pid %s still running' % pid
    assert not os.path.exists(m.dir)
    assert subprocess.run(['docker', 'info'], capture_output=True).returncode == 0
