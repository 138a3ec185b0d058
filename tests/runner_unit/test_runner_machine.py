"""End to end: a tiny built charm (plain bash hooks) deployed on a real machine namespace
with its own dockerd."""
import json
import os
import socket
import subprocess
import textwrap
import time
import urllib.error
import urllib.request

import pytest

from tests.support.fake_charm import COMMON

from localjuju import Model
from localjuju import docker_publish
from localjuju import machine as M
from tests.support import containers
from tests.support.fixtures import cache_dir


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
        # deployed without publish_ports: the system's docker, only the service shims
        assert r['results']['sbin'].split() == ['service', 'systemctl']
        # the host's mounts are untouched
        assert subprocess.run(['findmnt', '-n', '/etc'], capture_output=True).returncode != 0
    finally:
        m.destroy()
    for pid in pids:
        assert not M.pid_alive(pid), 'pid %s still running' % pid
    assert not os.path.exists(m.dir)
    assert subprocess.run(['docker', 'info'], capture_output=True).returncode == 0


@pytest.fixture
def machine(tmp_path):
    """A bare machine (no model) whose `docker` publishes on 127.0.0.11 (docker_publish)."""
    rec = M.create(str(tmp_path / 'machine'), 0, publish_address='127.0.0.11')
    yield rec
    M.destroy(rec)


def in_machine(rec, script):
    return M.ns_run(rec['holder_pid'], ['sh', '-c', script], check=False, capture_output=True,
                    text=True, timeout=120)


def test_machine_looks_like_ubuntu_and_keeps_its_files(machine):
    # the cloud image's default user, which charms put in groups (layer:docker)
    r = in_machine(machine, 'usermod -aG docker ubuntu && id -nG ubuntu')
    assert r.returncode == 0, r.stderr
    assert 'docker' in r.stdout.split()
    with open('/etc/group') as f:
        assert not any(line.startswith('docker:') and 'ubuntu' in line for line in f), \
            'the host\'s /etc is untouched'
    # unit files a charm renders and CAs it trusts stay in the machine
    r = in_machine(machine, 'echo x > /lib/systemd/system/localjuju-test.service')
    assert r.returncode == 0, r.stderr
    assert not os.path.exists('/lib/systemd/system/localjuju-test.service')
    r = in_machine(machine, 'echo x > /usr/local/share/ca-certificates/localjuju-test.crt')
    assert r.returncode == 0, r.stderr
    assert not os.path.exists('/usr/local/share/ca-certificates/localjuju-test.crt')


def test_service_and_systemctl_restart_the_machines_engine(machine):
    first = M.dockerd_pid(machine)
    assert first == machine['dockerd_pid'] and M.alive(machine)
    r = in_machine(machine, 'service docker restart && docker info >/dev/null')
    assert r.returncode == 0, r.stdout + r.stderr
    second = M.dockerd_pid(machine)
    assert second != first and not M.pid_alive(first) and M.alive(machine)
    # the daemon runs in the machine, with the runner's flags
    with open('/proc/%d/cmdline' % second, 'rb') as f:
        argv = f.read().split(b'\0')
    assert argv[:1] == [b'dockerd'] and b'--bridge=none' in argv
    assert os.readlink('/proc/%d/ns/mnt' % second) == \
        os.readlink('/proc/%d/ns/mnt' % machine['holder_pid'])
    r = in_machine(machine, 'systemctl daemon-reload && systemctl restart docker.service && '
                            'systemctl is-active docker && service docker status')
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'is running' in r.stdout
    assert M.dockerd_pid(machine) not in (first, second) and M.alive(machine)
    r = in_machine(machine, 'service docker stop; systemctl is-active docker')
    assert r.returncode == 3 and r.stdout.strip() == 'inactive'
    assert not M.alive(machine)
    r = in_machine(machine, 'systemctl start docker && docker info >/dev/null')
    assert r.returncode == 0 and M.alive(machine)
    # nothing else is a service here (the host's init scripts must not run)
    r = in_machine(machine, 'service cron restart')
    assert r.returncode != 0 and 'only docker' in r.stderr


def test_reboot_empties_run_keeps_the_disk_and_starts_a_new_engine(machine):
    r = in_machine(machine, 'echo lock > /run/some.lock && mkdir -p /srv/data && '
                            'echo kept > /srv/data/file && echo etc > /etc/localjuju-test')
    assert r.returncode == 0, r.stderr
    first = M.dockerd_pid(machine)
    rebooted = M.reboot(machine)
    assert rebooted['dockerd_pid'] != first and not M.pid_alive(first)
    assert M.alive(rebooted) and M.dockerd_pid(rebooted) == rebooted['dockerd_pid']
    r = in_machine(rebooted, 'test ! -e /run/some.lock && test -d /run/lock && '
                             'cat /srv/data/file /etc/localjuju-test && docker info >/dev/null')
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split() == ['kept', 'etc']
    machine.update(rebooted)  # the fixture destroys what runs now


def free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def http_get(url):
    """(status, body) of GET url, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b''
    except OSError:
        return None


def test_docker_run_publishing_the_registrys_ports_serves_them_on_the_machines_address(
        machine):
    """What the existing charm runs (`docker run -d -p PORT:5000 -p DEBUG:5001 ...`) serves
    the registry on PORT and its debug server on DEBUG, on the machine's address only."""
    archive = containers.build_registry_image('registry:2', cache_dir() / 'registry-image.tar')
    r = in_machine(machine, 'docker load -i %s >/dev/null' % archive)
    assert r.returncode == 0, r.stderr
    port, debug = free_port('127.0.0.11'), free_port('127.0.0.11')
    r = in_machine(machine, 'docker run -d -p %d:5000 -p %d:5001 --restart unless-stopped '
                            '-e HTTP_PROXY= --name pub registry:2' % (port, debug))
    assert r.returncode == 0, r.stderr
    for _ in range(100):
        got = http_get('http://127.0.0.11:%d/v2/' % port)
        if got:
            break
        time.sleep(0.1)
    assert got == (200, b'{}'), got
    assert http_get('http://127.0.0.11:%d/debug/vars' % debug)[0] == 200
    assert http_get('http://127.0.0.1:%d/v2/' % port) is None
    info = json.loads(in_machine(machine, 'docker inspect pub').stdout)[0]
    assert info['HostConfig']['NetworkMode'] == 'host'
    assert info['HostConfig']['RestartPolicy']['Name'] == 'unless-stopped'
    assert 'REGISTRY_HTTP_ADDR=127.0.0.11:%d' % port in info['Config']['Env']
    # nothing else can be published; everything else is docker's own
    r = in_machine(machine, 'docker run -d -p %d:80 --name web registry:2' % free_port(
        '127.0.0.11'))
    assert r.returncode == 125 and 'no bridge' in r.stderr, r.stderr
    r = in_machine(machine, 'docker ps -a --format "{{.Names}}"')
    assert r.stdout.split() == ['pub']


@pytest.mark.parametrize('args, expected', [
    # the existing charm's command
    (['run', '-d', '-p', '5002:5000', '-p', '5003:5001', '--restart', 'unless-stopped',
      '-e', 'HTTPS_PROXY=http://proxy:3128', '-v', '/srv/registry:/var/lib/registry',
      '--name', 'registry', 'registry:2'],
     ['run', '--network', 'host', '-e', 'REGISTRY_HTTP_ADDR=127.0.0.12:5002',
      '-e', 'REGISTRY_HTTP_DEBUG_ADDR=127.0.0.12:5003', '-d', '--restart', 'unless-stopped',
      '-e', 'HTTPS_PROXY=http://proxy:3128', '-v', '/srv/registry:/var/lib/registry',
      '--name', 'registry', 'registry:2']),
    # other spellings of the same
    (['container', 'create', '--publish=0.0.0.0:5002:5000/tcp', '-p5003:5001', 'reg', 'serve'],
     ['container', 'create', '--network', 'host', '-e', 'REGISTRY_HTTP_ADDR=127.0.0.12:5002',
      '-e', 'REGISTRY_HTTP_DEBUG_ADDR=127.0.0.12:5003', 'reg', 'serve']),
    # the container's own arguments are not docker's
    (['run', '-dit', '--name', 'x', 'img', 'sh', '-p', '80:80'],
     ['run', '-dit', '--name', 'x', 'img', 'sh', '-p', '80:80']),
    (['create', '--network', 'host', '--name', 'registry', 'registry:2', 'serve', 'c.yml'],
     ['create', '--network', 'host', '--name', 'registry', 'registry:2', 'serve', 'c.yml']),
    (['ps', '-a', '--filter', 'name=registry'], ['ps', '-a', '--filter', 'name=registry']),
])
def test_docker_publish_rewrites_only_the_registrys_publications(args, expected):
    assert docker_publish.rewrite(args, '127.0.0.12') == expected


@pytest.mark.parametrize('args', [
    ['run', '-p', '8080:80', 'nginx'],           # another container port
    ['run', '-p', '5000', 'registry:2'],          # a random host port
    ['run', '-p', '5002:5000/udp', 'registry:2'],
    ['run', '-p', '5002-5003:5000-5001', 'registry:2'],
    ['run', '-dP', 'registry:2'],
    ['run', '--net=host', '-p', '5002:5000', 'registry:2'],
])
def test_docker_publish_refuses_what_it_cannot_serve(args):
    with pytest.raises(docker_publish.Refused):
        docker_publish.rewrite(args, '127.0.0.12')
