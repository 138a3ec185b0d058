"""The few Juju hook tools the image actions use, called directly.

An action starts once per operator command (push once per image), and importing
charmhelpers' hookenv costs 0.1-0.3 s of that start: it imports distutils, which setuptools
provides. These calls need only subprocess and json. Values go to the tools as arguments,
as hookenv passes them; no credential is ever one of them.
"""
import json
import os
import subprocess

_config = None


def _run(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True,
                          timeout=120).stdout


def _json(*argv):
    out = _run(*argv, '--format=json').strip()
    return json.loads(out) if out else None


def config():
    """The charm's configuration (read once per action)."""
    global _config
    if _config is None:
        _config = _json('config-get', '--all') or {}
    return _config


def action_get():
    return _json('action-get') or {}


def action_set(values):
    _run('action-set', *['{}={}'.format(k, v) for k, v in values.items()])


def action_fail(message):
    _run('action-fail', message)


def action_log(message):
    """Progress the operator sees while the action runs; never fails the action."""
    try:
        _run('action-log', message)
    except (OSError, subprocess.SubprocessError):
        pass


def log(message, level='INFO'):
    _run('juju-log', '-l', level, message)


def application_name():
    return os.environ['JUJU_UNIT_NAME'].split('/')[0]


def ingress_address(binding):
    """The unit's ingress address on binding, else its private address."""
    try:
        return _json('network-get', binding)['ingress-addresses'][0]
    except (KeyError, IndexError, TypeError, ValueError, subprocess.CalledProcessError):
        return _run('unit-get', 'private-address').strip()


def related_addresses(endpoint):
    """[(unit, address)] of the remote units on every relation of endpoint."""
    found = []
    for rid in _json('relation-ids', endpoint) or []:
        for unit in _json('relation-list', '-r', rid) or []:
            data = _json('relation-get', '-r', rid, '-', unit) or {}
            address = data.get('ingress-address') or data.get('private-address')
            if address:
                found.append((unit, address))
    return found
