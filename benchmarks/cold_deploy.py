#!/usr/bin/env python3
"""Cold deployment: from the first hook to active, on a fresh unit with no wheels prepared
(LOCALJUJU_WHEEL_CACHE=off), as on a new Juju machine. Two wheelhouses of the same build:

- as `charm build` makes it (every dependency an sdist, compiled by layer:basic on the unit);
- as scripts/build-charm.sh ships it (universal wheels where PyPI has them).

Then the pip steps layer:basic runs, on the shipped wheelhouse, timed on this machine's
Python and on each Python 3.10-3.12 of pyenv found here, to show it installs on each.

Run as root with the tests' venv:  /opt/docker-registry-venv/bin/python benchmarks/cold_deploy.py
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, 'tools')]  # as pytest.ini

from localjuju import Model  # noqa: E402
from tests.support.charm_build import built_charm  # noqa: E402
from tests.support.deployment import APP, free_port_pair  # noqa: E402

PYENV = '/root/.pyenv/versions'


def sdist_variant(charm, out):
    """A copy of the built charm whose wheelhouse holds only sdists (plain `charm build`)."""
    shutil.copytree(charm, out, symlinks=True)
    wheelhouse = os.path.join(out, 'wheelhouse')
    for name in os.listdir(wheelhouse):
        if not name.endswith('.whl'):
            continue
        project, version = name.split('-')[:2]
        subprocess.run([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps',
                        '--no-binary', ':all:', '-d', wheelhouse,
                        '%s==%s' % (project, version)], check=True,
                       env=dict(os.environ, PIP_CONFIG_FILE=os.devnull))
        os.unlink(os.path.join(wheelhouse, name))
    return out


def cold_deploy(charm, image_archive, home):
    """Seconds from the first hook to active, and the install hook's share."""
    os.environ['LOCALJUJU_WHEEL_CACHE'] = 'off'
    model = Model(home=home, name='cold-%d' % os.getpid())
    try:
        port, debug = free_port_pair()
        model.deploy(charm, APP, config={'registry-port': port, 'debug-port': debug},
                     resources={'registry-image': image_archive})
        unit = model.load()['units'][APP + '/0']
        history = unit['history']
        started = next(t for state, msg, t in history if msg == 'installing agent')
        active = next(t for state, msg, t in history if state == 'active')
        log = model.log(APP + '/0')
        stamps = re.findall(r'^(\S+ \S+) running (\S+)', log, re.M)
        return active - started, stamps[:2]
    finally:
        model.destroy()


def _version(text):
    return tuple(int(x) for x in re.findall(r'\d+', text)[:3])


def pip_steps(wheelhouse, python):
    """layer:basic's pip steps (venv with system packages, pip/setuptools first, then all
    with --no-index --force-reinstall) on python; seconds."""
    env = {'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
           'PIP_CONFIG_FILE': os.devnull}
    specs = []
    for name in sorted(os.listdir(wheelhouse)):
        stem = re.sub(r'(-py[23][^-]*-none-any\.whl|\.tar\.gz|\.zip)$', '', name)
        project, version = stem.rsplit('-', 1)
        specs.append('%s==%s' % (project, version))
    first = [s for s in specs if s.lower().split('==')[0].replace('_', '-') in (
        'pip', 'setuptools', 'setuptools-scm')]
    rest = [s for s in specs if s not in first]
    with tempfile.TemporaryDirectory() as work:
        # As layer:basic does: setup_requires (charmhelpers' pbr) from the wheelhouse only.
        env['HOME'] = work
        with open(os.path.join(work, '.pydistutils.cfg'), 'w') as f:
            f.write('[easy_install]\nfind_links = file://%s/\nno_index=True\nindex_url=\n'
                    % wheelhouse)
        venv = os.path.join(work, 'venv')
        start = time.monotonic()
        subprocess.run(['virtualenv', '-p', python, '--never-download',
                        '--system-site-packages', venv], check=True, env=env,
                       capture_output=True)
        pip = [os.path.join(venv, 'bin', 'pip'), 'install', '-q', '-U', '--no-index',
               '--no-cache-dir', '-f', wheelhouse]
        # layer:basic's _update_if_newer: pip, setuptools, setuptools-scm only when the
        # wheelhouse's are newer than what virtualenv seeded.
        listed = subprocess.run([os.path.join(venv, 'bin', 'pip'), 'list', '--format',
                                 'freeze'], check=True, env=env, capture_output=True,
                                text=True).stdout
        seeded = dict(line.lower().replace('_', '-').split('==') for line in listed.split())
        newer = [spec for spec in first if _version(spec.split('==')[1]) > _version(
            seeded.get(spec.split('==')[0].lower().replace('_', '-'), '0'))]
        if newer:
            subprocess.run(pip + newer, check=True, env=env)
        subprocess.run(pip + ['--force-reinstall'] + rest, check=True, env=env)
        seconds = time.monotonic() - start
        # (charms.reactive imports charmhelpers.core.host, which refuses non-Ubuntu hosts)
        subprocess.run([os.path.join(venv, 'bin', 'python'), '-c',
                        'import charmhelpers.core.hookenv, jinja2, passlib.hash, yaml'],
                       check=True, env=env)
    return seconds


def main():
    charm = built_charm()
    work = tempfile.mkdtemp(prefix='cold-deploy-', dir='/var/tmp')
    try:
        image = os.path.join(work, 'registry-image.tar')
        subprocess.run(['bash', os.path.join(REPO, 'scripts', 'build-registry-image.sh'),
                        'registry:2', image], check=True, stdout=subprocess.DEVNULL)
        plain = sdist_variant(charm, os.path.join(work, 'plain-charm-build'))
        print('load before: %s' % os.getloadavg()[0])
        for label, path in (('charm build (sdists)', plain),
                            ('build-charm.sh (universal wheels)', charm)):
            seconds, stamps = cold_deploy(path, image, os.path.join(work, 'home'))
            print('%-36s first hook to active: %6.1f s   %s' % (label, seconds, stamps))
        pythons = sorted(os.path.join(PYENV, v, 'bin', 'python3') for v in
                         os.listdir(PYENV) if re.match(r'3\.1[0-2]\.', v)) \
            if os.path.isdir(PYENV) else []
        for python in ['/usr/bin/python3'] + pythons:
            seconds = pip_steps(os.path.join(charm, 'wheelhouse'), python)
            version = subprocess.run([python, '-V'], capture_output=True,
                                     text=True).stdout.strip()
            print('%-16s shipped wheelhouse, layer:basic pip steps: %6.1f s' % (version,
                                                                                seconds))
        print('load after: %s' % os.getloadavg()[0])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
