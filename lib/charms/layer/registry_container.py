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

FINGERPRINT_LABEL = 'io.juju.docker-registry.fingerprint'
UNIT_LABEL = 'io.juju.docker-registry.unit'
CONFIG_2X = '/etc/docker/registry/config.yml'
CONFIG_3X = '/etc/distribution/config.yml'

ContainerSpec = namedtuple('ContainerSpec', 'name image args fingerprint')


class DockerError(Exception):
    """A docker command failed; the message is docker's own (it never contains secrets,
    since none are passed on command lines)."""


def docker(*args, timeout=300, stdin=None):
    try:
        proc = subprocess.run(('docker',) + args, capture_output=True, text=True,
                              timeout=timeout, stdin=stdin)
    except FileNotFoundError:
        raise DockerError('the docker CLI is not installed')
    except subprocess.TimeoutExpired:
        raise DockerError('docker {} timed out after {}s'.format(args[0], timeout))
    if proc.returncode != 0:
        raise DockerError(proc.stderr.strip() or 'docker {} failed'.format(args[0]))
    return proc.stdout


def config_path_for(image_cmd):
    """Where the image reads its config: 3.x images use /etc/distribution/config.yml."""
    return CONFIG_3X if any(CONFIG_3X in part for part in image_cmd or ()) else CONFIG_2X


def is_distribution3(image_cmd):
    return config_path_for(image_cmd) == CONFIG_3X


def container_spec(config, unit_name, image_id, image_cmd, mounts, env_file, files):
    """The `docker run` arguments for this configuration.

    mounts: [(host_path, container_path, read_only)]; files: {host_path: bytes} of every
    mounted file, whose content is part of the fingerprint.
    """
    name = config['registry-name']
    args = ['--name', name, '--restart', 'unless-stopped', '--env-file', env_file,
            '--label', UNIT_LABEL + '=' + unit_name]
    if config['container-network'] == 'bridge':
        args += ['-p', '{0}:{0}'.format(config['registry-port'])]
        if config.get('prometheus-metrics'):
            args += ['-p', '{0}:{0}'.format(config['debug-port'])]
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
    return ContainerSpec(name, config['registry-image'], args, fingerprint)


# --- side effects ---------------------------------------------------------------------------

def image_info(image):
    """(id, cmd) of a local image, or None when the engine does not have it."""
    try:
        out = docker('image', 'inspect', '--format', '{{json .Id}}\n{{json .Config.Cmd}}', image)
    except DockerError:
        return None
    image_id, cmd = out.strip().splitlines()
    return json.loads(image_id), json.loads(cmd)


def load_image(archive):
    with open(archive, 'rb') as stream:
        docker('load', stdin=stream, timeout=900)


def pull_image(image):
    docker('pull', image, timeout=1800)


def container_state(name):
    """{'running', 'fingerprint', 'status', 'started'} or None when absent.

    started (docker's StartedAt) changes whenever the engine restarts the container.
    """
    try:
        out = docker('container', 'inspect', '--format',
                     '{{json .State}}\n{{json .Config.Labels}}', name)
    except DockerError:
        return None
    # JSON never holds a raw newline, so lines separate the two documents.
    state, labels = out.strip().splitlines()
    state, labels = json.loads(state), json.loads(labels) or {}
    # A crash-looping container is "Running" between attempts; it does not serve.
    running = state.get('Running', False) and not state.get('Restarting', False)
    return {'running': running, 'status': state.get('Status', ''),
            'fingerprint': labels.get(FINGERPRINT_LABEL), 'started': state.get('StartedAt')}


def apply_spec(spec):
    """Make the container match spec; returns 'unchanged', 'started' or 'recreated'.

    A replacement container is created before the old one stops, so the registry is down
    only between stop and start.
    """
    current = container_state(spec.name)
    if current and current['fingerprint'] == spec.fingerprint:
        if current['running']:
            return 'unchanged'
        docker('start', spec.name)
        return 'started'
    if current is None:
        docker('run', '--detach', *spec.args)
        return 'started'
    staging = spec.name + '-next'
    if container_state(staging):
        docker('rm', '--force', staging)
    staged_args = list(spec.args)
    staged_args[staged_args.index('--name') + 1] = staging
    docker('create', *staged_args)
    docker('stop', '--time', '10', spec.name)
    docker('rm', spec.name)
    # Renamed before it starts: docker 20.10 cannot rename a running host-network container.
    docker('rename', staging, spec.name)
    docker('start', spec.name)
    return 'recreated'


def remove_other_containers(unit_name, keep):
    """Remove this unit's registry containers not named keep (after registry-name changed).

    Only containers are removed: image data lives on the host or in object storage.
    """
    out = docker('ps', '--all', '--filter', 'label={}={}'.format(UNIT_LABEL, unit_name),
                 '--format', '{{.Names}}')
    for name in out.split():
        if name not in (keep, keep + '-next'):
            docker('rm', '--force', name)


def stop(name):
    if container_state(name):
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
