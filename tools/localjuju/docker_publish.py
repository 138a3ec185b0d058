"""A machine trait of the runner: it stands in for docker's port publishing (`docker run -p`)
of the distribution registry, with host networking on the machine's loopback address.

Machines' engines run with --bridge=none and no iptables (as the host's does): there is no
bridge and no docker-proxy, so a container can only use the host's network, and everything
a test starts listens on 127.0.0.0/8. The Charmed Kubernetes docker-registry charm (the one
a switch starts from) runs its registry with
`docker run -d -p PORT:5000 -p DEBUG_PORT:5001 ... IMAGE`, its config.yml listening on
0.0.0.0:5000 and, with prometheus-metrics, its debug server on 0.0.0.0:5001. On a machine
created with a publish address, `docker` in /usr/local/sbin (first on the hooks' PATH) runs
this script, which turns the publications of `run` and `create` into the registry's own
environment overrides, so that the registry listens on the host port docker-proxy would
have held, on the machine's address only:

    -p [IP:]H:5000[/tcp]  ->  --network host -e REGISTRY_HTTP_ADDR=ADDRESS:H
    -p [IP:]H:5001[/tcp]  ->  --network host -e REGISTRY_HTTP_DEBUG_ADDR=ADDRESS:H

(The debug server then runs even without prometheus-metrics; docker-proxy would hold that
port all the same.) A publication of any other container port, a port range, UDP or -P is
refused with docker's exit code 125, since nothing here can serve it; so is one next to
--network. Every other command runs docker unchanged.

Usage: docker_publish.py ADDRESS DOCKER [docker arguments]   (stdlib only: the machine's
python3 runs it for every docker command of a hook).
"""
import os
import re
import sys

ENV_FOR_CONTAINER_PORT = {'5000': 'REGISTRY_HTTP_ADDR', '5001': 'REGISTRY_HTTP_DEBUG_ADDR'}
# Options of `docker run`/`docker create` that take no value; every other option does.
FLAGS = {'-d', '--detach', '-i', '--interactive', '-t', '--tty', '--rm', '--init',
         '--privileged', '-P', '--publish-all', '--read-only', '--oom-kill-disable',
         '--no-healthcheck', '-q', '--quiet', '--disable-content-trust', '--sig-proxy',
         '--help'}
SHORT_FLAGS = 'ditPq'
COMMANDS = (['run'], ['create'], ['container', 'run'], ['container', 'create'])


class Refused(Exception):
    """A publication nothing on the machine can serve."""


def _split_options(args):
    """(options as [(option, value or None)], the image and what follows it) of run/create's
    arguments."""
    options, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg == '--' or not arg.startswith('-') or arg == '-':
            break
        if arg in FLAGS or re.fullmatch('-[%s]+' % SHORT_FLAGS, arg) or '=' in arg and \
                arg.startswith('--'):
            options.append((arg, None))
            i += 1
        elif re.fullmatch(r'-p.+', arg):
            options.append(('-p', arg[2:]))
            i += 1
        else:
            options.append((arg, args[i + 1] if i + 1 < len(args) else None))
            i += 2
    return options, args[i:]


def _publication(option, value):
    """The value of a -p/--publish option, else None."""
    if option in ('-p', '--publish'):
        return value
    if option.startswith('--publish='):
        return option[len('--publish='):]
    return None


def rewrite(args, address):
    """docker's arguments with the registry's publications served on address; args unchanged
    when they publish nothing. Raises Refused."""
    command = next((c for c in COMMANDS if args[:len(c)] == c), None)
    if command is None:
        return args
    options, rest = _split_options(args[len(command):])
    published = [p for p in (_publication(o, v) for o, v in options) if p is not None]
    if any(o == '--publish-all' or re.fullmatch('-[%s]+' % SHORT_FLAGS, o) and 'P' in o
           for o, _ in options):
        raise Refused('-P (publish all): this machine has no bridge')
    if not published:
        return args
    if any(o in ('--network', '--net') or o.startswith(('--network=', '--net='))
           for o, _ in options):
        raise Refused('-p with --network: this machine stands in for -p on the default '
                      'network only')
    env = []
    for value in published:
        spec, _, protocol = value.partition('/')
        parts = spec.rsplit(':', 2)
        if protocol not in ('', 'tcp') or len(parts) < 2 or not parts[-2].isdigit() or \
                parts[-1] not in ENV_FOR_CONTAINER_PORT:
            raise Refused('-p %s: this machine has no bridge; it serves only the registry\'s '
                          'ports (HOST:5000, HOST:5001) on its own address' % value)
        env += ['-e', '%s=%s:%s' % (ENV_FOR_CONTAINER_PORT[parts[-1]], address, parts[-2])]
    kept = []
    for option, value in options:
        if _publication(option, value) is None:
            kept += [option] if value is None else [option, value]
    return command + ['--network', 'host'] + env + kept + rest


def main(argv):
    address, docker, args = argv[1], argv[2], argv[3:]
    try:
        args = rewrite(args, address)
    except Refused as refused:
        sys.stderr.write('docker: %s (localjuju machine)\n' % refused)
        sys.exit(125)
    os.execv(docker, [docker] + args)


if __name__ == '__main__':
    main(sys.argv)
