"""The charm deployed through the local runner, as the functional tests and the benchmarks
see it: the application's name, a Deployment (a model plus helpers that act on its units'
machines) and the ports a deployment's registry may take.

Every deployed unit runs on its own runner machine (private mount namespace, own dockerd,
own loopback address leased host-wide from 127.0.0.11 up). The registry binds every address
by default, so models that run at the same time (this session's, or another developer's)
must use different ports: take them from free_port_pair().
"""
import random
import socket
import threading

from localjuju import machine as runner_machine

APP = 'docker-registry'


class Deployment:
    """A deployed model plus helpers that act on its units' machines."""

    def __init__(self, model):
        self.model = model

    def unit_status(self, unit=APP + '/0'):
        units = self.model.status()['applications'][APP]['units']
        return units[unit]['workload-status']

    def address(self, unit=APP + '/0'):
        return self.model.status()['applications'][APP]['units'][unit]['public-address']

    def holder_pid(self, unit=APP + '/0'):
        for machine in self.model.status()['machines'].values():
            if machine.get('unit') == unit:
                return machine['holder-pid']
        raise KeyError(unit)

    def on_machine(self, unit, *argv, check=True, timeout=120, **kwargs):
        """Run argv inside the unit's machine (its mount namespace, its docker engine)."""
        return runner_machine.ns_run(self.holder_pid(unit), argv, check=check, timeout=timeout,
                                     capture_output=True, text=True, **kwargs)

    def docker(self, unit, *args, check=True):
        return self.on_machine(unit, 'docker', *args, check=check).stdout

    def container_id(self, unit=APP + '/0', name='registry'):
        return self.docker(unit, 'inspect', '--format', '{{.Id}}', name).strip()

    def config(self, **values):
        """config(log_level='debug'): underscores become dashes, except in the
        nagios_* options whose names have underscores."""
        return self.model.config(APP, {k if k.startswith('nagios_') else k.replace('_', '-'): v
                                       for k, v in values.items()})

    def run(self, unit, action, **params):
        return self.model.run(unit, action, params)

    def listing(self, unit=APP + '/0'):
        """What the registry holds, as the images action lists it (tags and digests)."""
        result = self.run(unit, 'images')
        assert result['status'] == 'completed', result
        return result['results']['text']


def port_free(port):
    """Nobody listens on port on any address (binding the wildcard would fail)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(('', port))
        except OSError:
            return False
    return True


_taken_ports = set()
_taken_lock = threading.Lock()


def free_port_pair(low=20000, high=30000):
    """(registry-port, debug-port): both free now and not handed out before in this session.
    Random, so that two sessions on one host rarely even try the same pair."""
    candidates = list(range(low, high, 2))
    random.shuffle(candidates)
    with _taken_lock:
        for port in candidates:
            if {port, port + 1} & _taken_ports:
                continue
            if port_free(port) and port_free(port + 1):
                _taken_ports.update((port, port + 1))
                return port, port + 1
    raise RuntimeError('no free port pair in {}-{}'.format(low, high))
