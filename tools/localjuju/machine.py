"""Machines: a private mount namespace held open by a holder process, with an Ubuntu /etc
overlay, per-machine /run, /var/lib/docker, /srv, /usr/local/sbin, /var/lib/nagios, /root
(and a fake /var/lib/juju carrying a `jujud version` for charmhelpers) and its own dockerd.

Every daemon is started through `setsid -f` so it is not our child: it survives the CLI and
never needs reaping by us.  Pids are written by the daemon itself (`echo $$; exec ...`).
"""
import os
import shlex
import signal
import subprocess
import time

OS_RELEASE = """PRETTY_NAME="Ubuntu 24.04 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
VERSION="24.04 LTS (Noble Numbat)"
VERSION_CODENAME=noble
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
SUPPORT_URL="https://help.ubuntu.com/"
BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"
UBUNTU_CODENAME=noble
"""

LSB_RELEASE = """DISTRIB_ID=Ubuntu
DISTRIB_RELEASE=24.04
DISTRIB_CODENAME=noble
DISTRIB_DESCRIPTION="Ubuntu 24.04 LTS"
"""

JUJU_VERSION = '3.1.6'

# (mount point inside the machine, subdirectory of the machine dir)
BINDS = [
    ('/run', 'run'),
    ('/var/lib/docker', 'docker'),
    ('/srv', 'srv'),
    ('/usr/local/sbin', 'sbin'),
    ('/var/lib/nagios', 'nagios'),
    ('/var/lib/juju', 'juju'),
    # layer:basic's bootstrap writes /root/.pydistutils.cfg and removes it again: units
    # bootstrapping at the same time must not share it.
    ('/root', 'root'),
]

# Machines share the host's dpkg: an apt-get run by one unit's bootstrap waits for another's
# instead of failing on the lock (layer:basic would then retry only after 10 s).
APT_LOCK_WAIT = 'DPkg::Lock::Timeout "600";\n'

DOCKERD_ARGS = ['dockerd', '--bridge=none', '--iptables=false', '--ip6tables=false']


class MachineError(Exception):
    pass


def pid_alive(pid):
    """True when pid exists and is not a zombie."""
    if not pid:
        return False
    try:
        with open('/proc/%d/stat' % int(pid)) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(')', 1)[1].split()[0]
    return state not in ('Z', 'X')


def _spawn_daemon(argv, pidfile, logfile, timeout=10):
    """Start argv fully detached; return its pid (written by the daemon before exec)."""
    try:
        os.unlink(pidfile)
    except FileNotFoundError:
        pass
    script = 'echo $$ > %s.tmp && mv %s.tmp %s && exec %s' % (
        shlex.quote(pidfile), shlex.quote(pidfile), shlex.quote(pidfile),
        ' '.join(shlex.quote(a) for a in argv))
    with open(logfile, 'ab') as log, open(os.devnull, 'rb') as null:
        subprocess.run(['setsid', '-f', 'sh', '-c', script], stdin=null, stdout=log,
                       stderr=log, check=True, close_fds=True)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(pidfile) as f:
                txt = f.read().strip()
            if txt:
                return int(txt)
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    raise MachineError('daemon %s did not start (see %s)' % (argv[0], logfile))


def nsenter_argv(holder_pid, cwd=None):
    argv = ['nsenter', '-t', str(holder_pid), '-m']
    if cwd:
        argv.append('--wd=%s' % cwd)
    return argv + ['--']


def ns_run(holder_pid, argv, check=True, timeout=None, **kw):
    return subprocess.run(nsenter_argv(holder_pid) + list(argv), check=check, timeout=timeout,
                          **kw)


def create(mdir, number, preload_image=None, docker_timeout=60):
    """Create machine `number` in directory mdir; return its record for the state."""
    os.makedirs(mdir, exist_ok=True)
    for _, sub in BINDS:
        os.makedirs(os.path.join(mdir, sub), exist_ok=True)
    os.makedirs(os.path.join(mdir, 'run', 'lock'), exist_ok=True)
    tools = os.path.join(mdir, 'juju', 'tools', 'machine-%d' % number)
    os.makedirs(tools, exist_ok=True)
    jujud = os.path.join(tools, 'jujud')
    with open(jujud, 'w') as f:
        f.write('#!/bin/sh\necho %s-ubuntu-amd64\n' % JUJU_VERSION)
    os.chmod(jujud, 0o755)
    upper = os.path.join(mdir, 'etc-upper')
    work = os.path.join(mdir, 'etc-work')
    os.makedirs(upper, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(upper, 'os-release'), 'w') as f:
        f.write(OS_RELEASE)
    with open(os.path.join(upper, 'lsb-release'), 'w') as f:
        f.write(LSB_RELEASE)
    apt_conf = os.path.join(upper, 'apt', 'apt.conf.d')
    os.makedirs(apt_conf, exist_ok=True)
    with open(os.path.join(apt_conf, '90localjuju-lock-wait'), 'w') as f:
        f.write(APT_LOCK_WAIT)
    for mp, _ in BINDS:
        os.makedirs(mp, exist_ok=True)  # mount points must exist on the host
    logs = os.path.join(mdir, 'logs')
    os.makedirs(logs, exist_ok=True)
    rec = {'number': number, 'dir': mdir, 'holder_pid': None, 'dockerd_pid': None}
    rec['holder_pid'] = _spawn_daemon(
        ['unshare', '-m', '--propagation', 'private', 'sleep', 'infinity'],
        os.path.join(mdir, 'holder.pid'), os.path.join(logs, 'holder.log'))
    try:
        # wait until the holder has really entered its namespace (exec'd sleep)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if os.readlink('/proc/%d/ns/mnt' % rec['holder_pid']) != \
                        os.readlink('/proc/self/ns/mnt'):
                    break
            except OSError:
                pass
            time.sleep(0.02)
        mounts = ['mount -t overlay overlay -o lowerdir=/etc,upperdir=%s,workdir=%s /etc' % (
            shlex.quote(upper), shlex.quote(work))]
        for mp, sub in BINDS:
            mounts.append('mount --bind %s %s' % (shlex.quote(os.path.join(mdir, sub)), mp))
        ns_run(rec['holder_pid'], ['sh', '-ec', ' && '.join(mounts)], capture_output=True)
        rec['dockerd_pid'] = _spawn_daemon(
            nsenter_argv(rec['holder_pid']) + DOCKERD_ARGS,
            os.path.join(mdir, 'dockerd.pid'), os.path.join(logs, 'dockerd.log'))
        wait_docker(rec, docker_timeout)
        if preload_image:
            ns_run(rec['holder_pid'], ['docker', 'load', '-i', os.path.abspath(preload_image)],
                   capture_output=True)
    except BaseException as e:
        destroy(rec)
        if isinstance(e, subprocess.CalledProcessError):
            raise MachineError('machine %d setup failed: %s %s' % (
                number, e, (e.stderr or b'').decode(errors='replace')))
        raise
    return rec


def wait_docker(rec, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not pid_alive(rec['dockerd_pid']):
            raise MachineError('dockerd of machine %s exited (see %s/logs/dockerd.log)' % (
                rec['number'], rec['dir']))
        r = ns_run(rec['holder_pid'], ['docker', 'info'], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            return
        time.sleep(0.3)
    raise MachineError('dockerd of machine %s did not answer in %ss' % (rec['number'], timeout))


def _wait_gone(pid, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return not pid_alive(pid)


def _kill(pid, timeout):
    if not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not _wait_gone(pid, timeout):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        _wait_gone(pid, 10)


def _container_processes(container_ids):
    """Pids whose cgroup belongs to one of these containers."""
    pids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/cgroup' % entry) as f:
                cgroups = f.read()
        except OSError:
            continue
        if any(cid in cgroups for cid in container_ids):
            pids.append(int(entry))
    return pids


def destroy(rec):
    """Stop containers, dockerd (SIGTERM, wait), unmount and stop the holder.

    Container processes that outlive their engine (a shim orphaned when dockerd goes first,
    or a container that was restarting) would keep holding ports on the shared loopback
    network, so whatever is left in the machine's container cgroups is killed too.
    """
    holder, dockerd = rec.get('holder_pid'), rec.get('dockerd_pid')
    ids = []
    if pid_alive(holder) and pid_alive(dockerd):
        r = ns_run(holder, ['docker', 'ps', '-aq', '--no-trunc'], check=False,
                   capture_output=True, timeout=60)
        ids = r.stdout.decode().split() if r.returncode == 0 else []
        if ids:
            ns_run(holder, ['docker', 'rm', '-f'] + ids, check=False,
                   capture_output=True, timeout=120)
    _kill(dockerd, 30)
    for pid in _container_processes(ids):
        _kill(pid, 5)
    if pid_alive(holder):
        mps = ['/var/lib/docker'] + [mp for mp, _ in BINDS if mp != '/var/lib/docker'] + ['/etc']
        for mp in mps:
            ns_run(holder, ['umount', '-l', mp], check=False, capture_output=True)
    _kill(holder, 10)
    rec['dockerd_pid'] = None
    rec['holder_pid'] = None


def alive(rec):
    return pid_alive(rec.get('holder_pid')) and pid_alive(rec.get('dockerd_pid'))
