"""Stand-in for layer:basic's ``charms.layer.basic`` module.

Implements the subset a locally run charm needs:
  * ``bootstrap_charm_deps()``: no virtualenv and no wheelhouse install (the
    runner's python already carries the charm's Python dependencies).  On
    the first hook (and again after upgrade-charm / post-series-upgrade, as
    upstream) it apt-installs the layer option ``basic.packages`` that are
    missing, using charmhelpers.fetch.  On every hook it (re)writes
    /usr/local/sbin/charm-env (plus the charms.reactive / chlp wrappers),
    puts $JUJU_CHARM_DIR/bin on PATH and imports every charms.layer library.
  * ``init_config_states()`` / ``clear_config_states()``: the config.*
    flags (config.changed, config.changed.<opt>, config.set.<opt>,
    config.default.<opt>), set at hook start and cleared at hook end.
  * ``activate_venv()``: kept for actions that call it; only imports libs.
"""
import os
import sys

CHARM_ENV_PATH = '/usr/local/sbin/charm-env'
CHARM_ENV_VERSION = '1.0.0'
CHARM_ENV = r'''#!/bin/bash
# charm-env (localjuju stand-in of layer:basic's wrapper)
VERSION="{version}"
if [[ "$1" == "--version" || "$1" == "-v" ]]; then echo "$VERSION"; exit 0; fi
if [[ "$1" == "--charm" ]]; then shift; shift; fi
if [[ -z "$JUJU_CHARM_DIR" ]]; then export JUJU_CHARM_DIR="$CHARM_DIR"; fi
if [[ -z "$CHARM_DIR" ]]; then export CHARM_DIR="$JUJU_CHARM_DIR"; fi
if [[ -z "$JUJU_CHARM_DIR" ]]; then
    >&2 echo 'Unable to determine JUJU_CHARM_DIR; please run within a Juju hook context'
    exit 1
fi
export PYTHONPATH="$JUJU_CHARM_DIR/lib:$PYTHONPATH"
cd "$JUJU_CHARM_DIR" || exit 1
name="$(basename "$0")"
if [[ "$name" == "charm-env" ]]; then
    exec "$@"
fi
# invoked through a wrapper symlink: run the real command of that name
exec "$(PATH="${{PATH//\/usr\/local\/sbin:/}}" command -v "$name")" "$@"
'''.format(version=CHARM_ENV_VERSION)
WRAPPERS = ('charms.reactive', 'chlp')
BOOTSTRAP_MARKER = os.path.join('wheelhouse', '.bootstrapped')


def _charm_dir():
    return os.environ.get('JUJU_CHARM_DIR') or os.environ.get('CHARM_DIR') \
        or os.getcwd()


def install_or_update_charm_env():
    """Write /usr/local/sbin/charm-env and its wrapper links if needed."""
    sbin = os.path.dirname(CHARM_ENV_PATH)
    os.makedirs(sbin, exist_ok=True)
    try:
        with open(CHARM_ENV_PATH) as fp:
            current = fp.read()
    except OSError:
        current = None
    if current != CHARM_ENV:
        tmp = CHARM_ENV_PATH + '.new'
        with open(tmp, 'w') as fp:
            fp.write(CHARM_ENV)
        os.chmod(tmp, 0o755)
        os.replace(tmp, CHARM_ENV_PATH)
    for wrapper in WRAPPERS:
        dst = os.path.join(sbin, wrapper)
        if not os.path.lexists(dst):
            os.symlink(CHARM_ENV_PATH, dst)


def _install_layer_packages():
    from charms.layer import options
    packages = options.get('basic', 'packages') or []
    if not packages:
        return
    from charmhelpers.fetch import apt_install, filter_installed_packages
    missing = filter_installed_packages(packages)
    if missing:
        apt_install(missing, fatal=True)


def bootstrap_charm_deps():
    """Prepare the unit so the reactive framework can run (see module doc)."""
    charm_dir = _charm_dir()
    bindir = os.path.join(charm_dir, 'bin')
    if bindir not in os.environ.get('PATH', '').split(':'):
        os.environ['PATH'] = os.environ.get('PATH', '') + ':' + bindir
    hook_name = os.path.basename(sys.argv[0])
    marker = os.path.join(charm_dir, BOOTSTRAP_MARKER)
    upgrading = hook_name in ('upgrade-charm', 'post-series-upgrade')
    install_or_update_charm_env()
    if upgrading or not os.path.exists(marker):
        _install_layer_packages()
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        open(marker, 'w').close()
    activate_venv()


def activate_venv():
    """No venv here: just make layer libraries importable as upstream."""
    from charms import layer
    layer._make_options_callable()
    layer.import_layer_libs()


def init_config_states():
    """Set config.* flags from the current and previous charm config."""
    import yaml
    from charmhelpers.core import hookenv
    from charms.reactive import set_flag, toggle_flag
    config = hookenv.config()
    definitions = {}
    path = os.path.join(hookenv.charm_dir(), 'config.yaml')
    if os.path.exists(path):
        with open(path) as fp:
            definitions = (yaml.safe_load(fp) or {}).get('options') or {}
    for name, definition in definitions.items():
        value = config.get(name)
        if config.changed(name):
            set_flag('config.changed')
            set_flag('config.changed.' + name)
        toggle_flag('config.set.' + name, value)
        toggle_flag('config.default.' + name,
                    value == (definition or {}).get('default'))


def clear_config_states():
    """Drop the config.* flags at the end of the hook."""
    from charmhelpers.core import hookenv, unitdata
    from charms.reactive import clear_flag
    clear_flag('config.changed')
    for name in hookenv.config().keys():
        for prefix in ('config.changed.', 'config.set.', 'config.default.'):
            clear_flag(prefix + name)
    unitdata.kv().flush()
