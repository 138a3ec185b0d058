"""Helpers shared by the unit tests: real option defaults, a fake docker engine, and one call
that turns a configuration into everything the registry would see."""
import base64

from charms.layer import registry_paths
import copy
import functools
import json
import shlex
from collections import namedtuple
from pathlib import Path
from unittest import mock

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = str(ROOT / 'templates')
UNIT = 'docker-registry/0'
UNIT_ADDRESS = '192.0.2.3'
HTTP_SECRET = 'shared-http-secret'
# config.yml, parsed, for the default options (and HTTP_SECRET from the leader).
DEFAULT_REGISTRY = {
    'version': 0.1,
    'log': {'level': 'info', 'fields': {'service': 'registry'}},
    'storage': {'filesystem': {'rootdirectory': '/var/lib/registry'},
                'cache': {'blobdescriptor': 'inmemory'},
                'delete': {'enabled': False},
                'redirect': {'disable': True},
                'maintenance': {'readonly': {'enabled': False}}},
    'http': {'addr': ':5000', 'secret': HTTP_SECRET,
             'headers': {'X-Content-Type-Options': ['nosniff']}},
    'health': {'storagedriver': {'enabled': True, 'interval': '10s', 'threshold': 3}},
}
IMAGE_ID = 'sha256:' + 'a' * 64
IMAGE_CMD = ['serve', '/etc/docker/registry/config.yml']


def _production_bcrypt_rounds():
    from charms.layer import registry_auth
    return registry_auth.BCRYPT_ROUNDS


BCRYPT_ROUNDS = _production_bcrypt_rounds()  # read before conftest lowers it per test

CERT_PEM = b'-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n'
KEY_PEM = b'-----BEGIN PRIVATE KEY-----\nMIIBkey\n-----END PRIVATE KEY-----\n'
# A real (self-signed, expiring in 2126) CA certificate: validation parses tls-client-ca-blob.
CA_PEM = (
    b'-----BEGIN CERTIFICATE-----\n'
    b'MIIBejCCASGgAwIBAgIUUpi60QM3GIUFIILupfmBLeYVM0kwCgYIKoZIzj0EAwIw\n'
    b'EjEQMA4GA1UEAwwHdGVzdC1jYTAgFw0yNjEyMDYxOTM5NDBaGA8yMTI2MTExMjE5\n'
    b'Mzk0MFowEjEQMA4GA1UEAwwHdGVzdC1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEH\n'
    b'A0IABKiPC6VrI92LiYfRCncO483Z8g8dswu18VH4ZBB7YbnSSFQ3OGZBd9Cs9bQK\n'
    b'8HUIZ+FRoKYlRR29VK9LOxXH+9OjUzBRMB0GA1UdDgQWBBTnnKBjuPJs1OjVw2D3\n'
    b'KWJxSJ2IfzAfBgNVHSMEGDAWgBTnnKBjuPJs1OjVw2D3KWJxSJ2IfzAPBgNVHRMB\n'
    b'Af8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIELvXSQ06p0NSE2oPAeIWk3gLPkr\n'
    b'A9TtM1gAGCmUjHvWAiAdKKx3az3qVNbbILjqTyFyxamFnqroJE91Q53uLcW1Cw==\n'
    b'-----END CERTIFICATE-----\n')


def b64(data):
    return base64.b64encode(data).decode()


@functools.lru_cache(maxsize=None)
def _option_definitions():
    with open(ROOT / 'config.yaml') as stream:
        return yaml.safe_load(stream)['options']


def option_definitions():
    return copy.deepcopy(_option_definitions())


def defaults():
    return {name: spec.get('default') for name, spec in option_definitions().items()}


Result = namedtuple('Result', 'config registry files args env spec problems facts tls')


def run(config, disk=None, existing_htpasswd=None, leader_secret=HTTP_SECRET):
    """Everything the registry sees for `config` (a full option mapping).

    disk: {path: bytes} of files already on the unit (tls-*-path certificates).
    Facts come from registry_juju.facts with the hook environment mocked.
    """
    from charms.layer import registry_access, registry_files, registry_juju
    from charms.layer.registry_validation import validate
    disk = disk or {}
    with mock.patch.object(registry_juju.hookenv, 'network_get',
                           return_value={'ingress-addresses': [UNIT_ADDRESS]}), \
            mock.patch.object(registry_juju.hookenv, 'leader_get', return_value=leader_secret), \
            mock.patch.object(registry_files, 'read_file', side_effect=disk.get):
        tls = registry_access.serving_tls(config)
        facts = registry_juju.facts(config, tls)
    files = registry_files.desired_files(config, facts, tls, [existing_htpasswd],
                                           [UNIT_ADDRESS], TEMPLATES)
    spec = registry_files.desired_container(config, facts, UNIT, (IMAGE_ID, IMAGE_CMD), files)
    registry = yaml.safe_load(files[registry_paths.HOST_CONFIG].content)
    env = files[registry_paths.HOST_ENV].content.decode()
    return Result(config, registry, files, spec.args, env, spec, validate(config), facts, tls)


def with_options(base=None, **overrides):
    config = defaults()
    config.update(base or {})
    config.update(overrides)
    return config


class FakeDockerError(Exception):
    pass


class FakeDocker:
    """Stands in for registry_container.docker: keeps containers and images, records calls.

    containers: {name: {'running': bool, 'labels': {}, 'args': [...]}}
    images: {reference: (id, cmd)}
    fail: {verb: message} makes that verb raise DockerError.
    """

    def __init__(self):
        self.containers = {}
        self.images = {}
        self.calls = []
        self.fail = {}
        self.on_load = None
        self.on_pull = None
        self.logs = {}  # {container name: what `docker logs` prints}
        # docker 20.10 cannot rename a running container on the host network
        self.rename_running_fails = True

    def add_container(self, name, running=True, labels=None, args=None, error=''):
        self.containers[name] = {'running': running, 'labels': dict(labels or {}),
                                 'args': list(args or []), 'error': error, 'starts': 1}

    def verbs(self):
        return [call[0] if call[0] not in ('container', 'image') else ' '.join(call[:2])
                for call in self.calls]

    def mutating_calls(self):
        return [c for c in self.calls if c[0] not in ('container', 'image', 'ps', 'info')
                or (c[0] == 'container' and c[1] not in ('inspect', 'ls'))]

    def _error(self, message):
        from charms.layer.registry_container import DockerError
        return DockerError(message)

    @staticmethod
    def _template(args, fields):
        """Fill docker's --format template the way docker does."""
        out = args[args.index('--format') + 1]
        for field, value in fields.items():
            out = out.replace(field, value)
        return out + '\n'

    def __call__(self, *args, timeout=300, stdin=None, with_stderr=False):
        self.calls.append(tuple(args))
        verb = args[0]
        key = ' '.join(args[:2]) if verb in ('container', 'image') else verb
        if key in self.fail:
            raise self._error(self.fail[key])
        if key == 'container inspect':
            name = args[-1]
            if name not in self.containers:
                raise self._error('Error: No such container: ' + name)
            c = self.containers[name]
            # docker's {{json}} is compact: no spaces outside strings
            restarting = c.get('restarting', False)
            state = {'Status': 'restarting' if restarting else
                     'running' if c['running'] else 'exited',
                     'Running': c['running'] or restarting, 'Restarting': restarting,
                     'Error': c.get('error', ''),
                     'StartedAt': '2026-11-28T00:00:{:02d}Z'.format(c['starts'])}
            return self._template(args, {
                '{{json .State}}': json.dumps(state, separators=(',', ':')),
                '{{json .Config.Labels}}': json.dumps(c['labels'], separators=(',', ':')),
                '{{json .Id}}': json.dumps(c.get('id', 'id-of-' + name))})
        if key == 'image inspect':
            ref = args[-1]
            if ref not in self.images:
                raise self._error('Error: No such image: ' + ref)
            image_id, cmd = self.images[ref]
            return self._template(args, {
                '{{json .Id}}': json.dumps(image_id),
                '{{json .Config.Cmd}}': json.dumps(cmd, separators=(',', ':'))})
        if verb == 'ps':
            label = args[args.index('--filter') + 1].split('=', 1)[1]
            key, _, value = label.partition('=')
            fmt = args[args.index('--format') + 1]
            return ''.join((c['labels'][key] if fmt.startswith('{{.Label') else name) + '\n'
                           for name, c in self.containers.items()
                           if key in c['labels'] and (not value or c['labels'][key] == value)
                           and (c['running'] or '--all' in args))
        if verb in ('create', 'run'):
            rest = [a for a in args[1:] if a not in ('--detach', '-d')]
            name = rest[rest.index('--name') + 1]
            if name in self.containers:
                raise self._error('Conflict. The container name "/{}" is already in use'
                                  .format(name))
            labels = dict(rest[i + 1].split('=', 1)
                          for i, a in enumerate(rest) if a == '--label')
            self.add_container(name, verb == 'run', labels, rest)
            return 'c0ffee\n'
        if verb == 'start':
            self._need(args[-1])['running'] = True
            self._need(args[-1])['starts'] += 1
            return args[-1] + '\n'
        if verb == 'stop':
            self._need(args[-1])['running'] = False
            return args[-1] + '\n'
        if verb == 'rm':
            name = args[-1]
            c = self._need(name)
            if c['running'] and '-f' not in args and '--force' not in args:
                raise self._error('You cannot remove a running container')
            del self.containers[name]
            return name + '\n'
        if verb == 'rename':
            old, new = args[1], args[2]
            if new in self.containers:
                raise self._error('name in use')
            if self.containers.get(old, {}).get('running') and self.rename_running_fails:
                raise self._error('cannot rename a running host-network container')
            self.containers[new] = self.containers.pop(self._need_name(old))
            return ''
        if verb == 'ps' or key == 'container ls':
            return self._ps(args)
        if verb == 'load':
            if self.on_load:
                self.on_load(self)
            return 'Loaded image\n'
        if verb == 'pull':
            if self.on_pull:
                self.on_pull(self, args[-1])
            return 'pulled\n'
        if verb == 'info':
            return 'ok\n'
        if verb == 'logs':
            return self.logs.get(self._need_name(args[-1]), '')
        raise AssertionError('FakeDocker: unexpected docker call {}'.format(shlex.join(args)))

    def _need_name(self, name):
        if name not in self.containers:
            raise self._error('Error: No such container: ' + name)
        return name

    def _need(self, name):
        return self.containers[self._need_name(name)]

    def _ps(self, args):
        args = list(args)
        show_all = '-a' in args or '--all' in args
        names = []
        for name, c in sorted(self.containers.items()):
            if not (show_all or c['running']):
                continue
            ok = True
            for i, a in enumerate(args):
                if a in ('--filter', '-f') and i + 1 < len(args):
                    kind, _, value = args[i + 1].partition('=')
                    if kind == 'label':
                        k, _, v = value.partition('=')
                        ok &= k in c['labels'] and (not v or c['labels'][k] == v)
                    elif kind == 'name':
                        ok &= value in name
            if ok:
                names.append(name)
        return ''.join(n + '\n' for n in names)
