"""The registry container: its specification (pure) and the docker calls that apply it.

`container_spec(...)` says what `docker run` must get; its fingerprint covers everything the
registry sees (arguments, image id, and the content of every mounted file), and is kept as a
label on the container, so `apply_spec` recreates the container only when one of those
changed. Every docker call goes through `docker()`; nothing reaches a shell, and secrets are
only ever in files (the env file, config.yml), never in arguments.
"""
import hashlib
import json
import os
import subprocess
import time
from collections import namedtuple

from charms.layer import registry_paths as paths

FINGERPRINT_LABEL = 'io.juju.docker-registry.fingerprint'
UNIT_LABEL = 'io.juju.docker-registry.unit'

ContainerSpec = namedtuple('ContainerSpec', 'name unit image args fingerprint')


class DockerError(Exception):
    """A docker command failed; the message is docker's own (it never contains secrets,
    since none are passed on command lines)."""


def docker(*args, timeout=300, stdin=None, with_stderr=False):
    """docker's stdout (followed by its stderr with with_stderr: `docker logs` passes the
    container's stderr through there)."""
    try:
        proc = subprocess.run(('docker',) + args, capture_output=True, text=True,
                              timeout=timeout, stdin=stdin)
    except FileNotFoundError:
        raise DockerError('the docker CLI is not installed')
    except subprocess.TimeoutExpired:
        raise DockerError('docker {} timed out after {}s'.format(args[0], timeout))
    if proc.returncode != 0:
        raise DockerError(proc.stderr.strip() or 'docker {} failed'.format(args[0]))
    return proc.stdout + proc.stderr if with_stderr else proc.stdout


def config_path_for(image_cmd):
    """Where the image reads its config: 3.x images use /etc/distribution/config.yml."""
    if any(paths.CONTAINER_CONFIG_3X in part for part in image_cmd or ()):
        return paths.CONTAINER_CONFIG_3X
    return paths.CONTAINER_CONFIG_2X


def is_distribution3(image_cmd):
    return config_path_for(image_cmd) == paths.CONTAINER_CONFIG_3X


def container_spec(config, unit_name, image_id, image_cmd, mounts, env_file, files,
                   listen_host='', unit_address=''):
    """The `docker run` arguments for this configuration.

    mounts: [(host_path, container_path, read_only)]; files: {host_path: bytes} of every
    mounted file, whose content is part of the fingerprint. In bridge mode the registry
    port is published on listen_host ('' = every address) and the debug port on
    unit_address ('' = loopback).
    """
    name = config['registry-name']
    args = ['--name', name, '--restart', 'unless-stopped', '--env-file', env_file,
            '--label', UNIT_LABEL + '=' + unit_name,
            # Every request is logged: bound what the engine keeps (50 MiB).
            '--log-driver', 'json-file', '--log-opt', 'max-size=10m', '--log-opt', 'max-file=5']
    if config['container-network'] == 'bridge':
        args += ['-p', _published(listen_host, config['registry-port'])]
        if config.get('prometheus-metrics'):
            args += ['-p', _published(unit_address or '127.0.0.1', config['debug-port'])]
    else:
        args += ['--network', 'host']
    for host_path, container_path, read_only in mounts:
        # Mount the real path, so the daemon sees the same file through any symlink.
        args += ['-v', '{}:{}{}'.format(os.path.realpath(host_path), container_path,
                                       ':ro' if read_only else '')]
    command = ['serve', config_path_for(image_cmd)]
    digest = hashlib.sha256()
    digest.update(json.dumps([args, image_id, command]).encode())
    for path in sorted(files):
        digest.update(path.encode() + b'\0' + files[path] + b'\0')
    fingerprint = digest.hexdigest()
    # Run by name for readable `docker ps`; the id in the fingerprint recreates the
    # container when the name comes to point at another image.
    args += ['--label', FINGERPRINT_LABEL + '=' + fingerprint, config['registry-image']]
    args += command
    return ContainerSpec(name, unit_name, config['registry-image'], args, fingerprint)


def _published(host, port):
    """docker run -p's value: [host:]port:port, an IPv6 host in brackets."""
    if not host:
        return '{0}:{0}'.format(port)
    return '{}:{}:{}'.format('[{}]'.format(host) if ':' in host else host, port, port)


# --- side effects ---------------------------------------------------------------------------

def image_info(image):
    """(id, cmd) of a local image, or None when the engine does not have it."""
    try:
        # '--': a name is never read as an option (registry-image is checked only later).
        out = docker('image', 'inspect', '--format', '{{json .Id}}\n{{json .Config.Cmd}}', '--',
                     image)
    except DockerError:
        return None
    image_id, cmd = out.strip().splitlines()
    return json.loads(image_id), json.loads(cmd)


def engine_root():
    """docker's data root (images, container logs), or None when the engine does not say."""
    try:
        return docker('info', '--format', '{{.DockerRootDir}}', timeout=60).strip() or None
    except DockerError:
        return None


def load_image(archive):
    with open(archive, 'rb') as stream:
        docker('load', stdin=stream, timeout=900)


def pull_image(image):
    docker('pull', '--', image, timeout=1800)


def container_state(name):
    """{'running', 'fingerprint', 'unit', 'status', 'started'} or None when absent.

    unit: the unit whose container it is (its label, or a take_over record); started
    (docker's StartedAt) changes whenever the engine restarts the container.
    """
    try:
        out = docker('container', 'inspect', '--format',
                     '{{json .State}}\n{{json .Config.Labels}}\n{{json .Id}}', '--', name)
    except DockerError:
        return None
    # JSON never holds a raw newline, so lines separate the documents.
    state, labels, container_id = out.strip().splitlines()
    state, labels = json.loads(state), json.loads(labels) or {}
    # A crash-looping container is "Running" between attempts; it does not serve.
    running = state.get('Running', False) and not state.get('Restarting', False)
    return {'running': running, 'status': state.get('Status', ''),
            'fingerprint': labels.get(FINGERPRINT_LABEL),
            'unit': labels.get(UNIT_LABEL) or _taken_over_by(json.loads(container_id)),
            'started': state.get('StartedAt')}


def take_over(name, unit_name):
    """Record the container called name, which has no unit label (the Charmed Kubernetes
    charm made it, before a switch to this one), as unit_name's: apply_spec then replaces
    it like one of ours instead of refusing another workload's. Returns whether it did."""
    try:
        out = docker('container', 'inspect', '--format',
                     '{{json .Config.Labels}}\n{{json .Id}}', '--', name)
    except DockerError:
        return False
    labels, container_id = out.strip().splitlines()
    if (json.loads(labels) or {}).get(UNIT_LABEL):
        return False
    os.makedirs(os.path.dirname(paths.TAKEN_OVER), exist_ok=True)
    with open(paths.TAKEN_OVER, 'w') as f:
        json.dump({'id': json.loads(container_id), 'unit': unit_name}, f)
    return True


def _taken_over_by(container_id):
    try:
        with open(paths.TAKEN_OVER) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record.get('unit') if record.get('id') == container_id else None


class Rejected(Exception):
    """The new container did not prove itself and the previous one (if any) serves again.

    logs: the failed container's last log lines, as the registry wrote them (they may hold
    secrets: registry_rejection redacts them before anyone sees them); previous_serves:
    whether an earlier container of ours runs again.
    """

    def __init__(self, logs, previous_serves):
        super().__init__(logs, previous_serves)
        self.logs, self.previous_serves = logs, previous_serves


class NotOurs(DockerError):
    """A container with the registry's name belongs to another workload (it lacks this
    unit's label); the charm never stops or removes it."""

    def __init__(self, name):
        super().__init__('a container named {} exists and is not this unit\'s registry; '
                         'set registry-name to another name'.format(name))


def apply_spec(spec, proves_itself, restore_files):
    """Make the container match spec; returns 'unchanged', 'started' or 'recreated'.

    A new container must prove itself (proves_itself(name) -> bool: it serves and keeps
    running) before the one it replaces is gone. The old container is stopped (it holds
    the port) and kept as <name>-previous; if the new one fails, it is removed, the files
    the old one mounts are put back (restore_files()) and the old one starts again, and
    Rejected carries the new one's logs. Raises NotOurs for another workload's container.
    """
    current = container_state(spec.name)
    if current and current['unit'] != spec.unit:
        raise NotOurs(spec.name)
    staging, previous = spec.name + '-next', spec.name + '-previous'
    kept = container_state(previous)
    if current is None and kept and kept['unit'] == spec.unit:
        # A hook died while a new container was proving itself: the kept one is the last
        # good configuration; it becomes the one to replace.
        docker('rename', previous, spec.name)
        current = container_state(spec.name)
    if current and current['fingerprint'] == spec.fingerprint:
        if current['running']:
            return 'unchanged'
        docker('start', spec.name)
        return 'started'
    for leftover in (staging, previous):
        # From a hook that died half-way; ours only (same unit label).
        state = container_state(leftover)
        if state and state['unit'] == spec.unit:
            docker('rm', '--force', leftover)
    staged_args = list(spec.args)
    staged_args[staged_args.index('--name') + 1] = staging
    docker('create', *staged_args)
    if current:
        docker('stop', '--time', '10', spec.name)
        # Renamed only once stopped: docker 20.10 cannot rename a running host-network
        # container.
        docker('rename', spec.name, previous)
    docker('rename', staging, spec.name)
    try:
        docker('start', spec.name)
    except DockerError as error:  # e.g. bridge mode: docker cannot publish the port
        start_error = str(error)
    else:
        start_error = None
        if proves_itself(spec.name):
            if current:
                docker('rm', previous)
            return 'recreated' if current else 'started'
    logs = start_error or container_logs(spec.name)
    docker('rm', '--force', spec.name)
    if current:
        restore_files()
        docker('rename', previous, spec.name)
        docker('start', spec.name)
    raise Rejected(logs, bool(current))


def container_logs(name, lines=20):
    """The container's last log lines (the registry logs to stderr), '' when docker cannot
    say."""
    try:
        return docker('logs', '--tail', str(lines), name, timeout=30, with_stderr=True)
    except DockerError:
        return ''


def adopt(unit_name, name):
    """Prepare this unit's containers for a spec named name (registry-name may have changed).

    Raises NotOurs when name is another workload's container. A container of this unit
    under another name (the previous registry-name) is renamed to name, stopped first
    (docker 20.10 cannot rename a running host-network container), so that apply_spec
    replaces it transactionally; any further ones are removed. Only containers are
    removed: image data lives on the host or in object storage.
    """
    current = container_state(name)
    if current and current['unit'] != unit_name:
        raise NotOurs(name)
    out = docker('ps', '--all', '--filter', 'label={}={}'.format(UNIT_LABEL, unit_name),
                 '--format', '{{.Names}}')
    others = [other for other in out.split()
              if other not in (name, name + '-next', name + '-previous')]
    # The running one (the registry serving now) is the one to keep as the last good.
    others.sort(key=lambda other: not (container_state(other) or {}).get('running'))
    for other in others:
        if current is None:
            docker('stop', '--time', '10', other)
            docker('rename', other, name)
            current = container_state(name)
        else:
            docker('rm', '--force', other)


def other_units(unit_name):
    """Other units whose registry containers run on this engine (and so on this machine,
    sharing its paths)."""
    out = docker('ps', '--filter', 'label=' + UNIT_LABEL,
                 '--format', '{{.Label "' + UNIT_LABEL + '"}}')
    return sorted(set(out.split()) - {unit_name})


def stop(name, unit_name):
    """Stop our container called name. Another workload's container of that name is left
    alone: ours does not exist then, so nothing of ours serves (and the stop hook and the
    stop action still succeed)."""
    state = container_state(name)
    if state and state['unit'] == unit_name:
        docker('stop', '--time', '10', name)


def start(name):
    docker('start', name)


def wait_until(predicate, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
