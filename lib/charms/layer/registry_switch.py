"""Taking over a unit from the Charmed Kubernetes docker-registry charm
(`juju refresh docker-registry --switch ...`).

That charm runs the same registry with the same option names, so most of what it left is
adopted as it is; the rest is removed here, once, in the first upgrade-charm hook:

  * its container (named registry-name, no labels of ours, `-p port:5000` on docker's bridge)
    is recorded as this unit's (registry_container.take_over), so that the first converge
    replaces it transactionally, as apply_spec replaces ours, keeping the name;
  * its image data, /srv/registry mounted at /var/lib/registry, is ours too (HOST_DATA);
  * its htpasswd (`htpasswd -B`, same path) is kept while it verifies the configured password,
    so clients keep their credentials; its config.yml (same path) is rewritten;
  * certificate files it wrote from its cert-provider relation at tls-*-path would look like
    an operator's files to us (registry_tls.select, source 'paths'): removed when its TLS flag
    says they are still in place (it removes them itself when that relation goes);
  * its /etc/docker/certs.d/<netloc>/client.{cert,key} symlinks to those files, its
    auth_token.pem, its `insecure-registries` entry in daemon.json (written with TLS off;
    it would let the unit's docker skip verifying our certificate) and the CA it put in the
    system trust store (/usr/local/share/ca-certificates/juju-<application>.crt): removed;
    daemon.json is read again at the engine's next restart, which is not forced here;
  * its reactive flags and unitdata keys: cleared.

Kept on purpose: layer:docker's apt holds on docker.io and its /etc/default/docker and
docker.service (they are the engine's installation; changing them would restart the engine).

`plan` is pure (what the old charm left, in; what to remove, out); `adopt` gathers and acts.
"""
import json
import os
import subprocess
from collections import namedtuple
from urllib.parse import urlsplit

from charmhelpers.core import hookenv, unitdata
from charms.reactive import clear_flag
from charms.reactive.flags import get_flags

from charms.layer import registry_container
from charms.layer import registry_paths as paths

OLD_FLAG_PREFIXES = ('charm.docker-registry.', 'cert-provider.', 'endpoint.cert-provider.',
                     'docker.', 'nvidia-docker.', 'apt.', 'cgroups.modified')
OLD_TLS_FLAG = 'charm.docker-registry.tls-enabled'
OLD_CONFIGURED_FLAG = 'charm.docker-registry.configured'
# unitdata keys of the old charm: its container's volumes and its data_changed hashes.
OLD_KV_KEYS = ('docker_volumes',) + tuple('reactive.data_changed.' + key for key in (
    'basic_auth', 'token_auth', 'tls_sans', 'proxy_stanza', 'proxy_netloc'))

# flags: every reactive flag set; kv_keys: unitdata keys present; config: the charm config;
# certs_d: {netloc dir: {file name: symlink target or None}}; daemon: daemon.json as a dict
# or None; netlocs: the registry's addresses as the old charm named them (host:port).
Leftovers = namedtuple('Leftovers', 'flags kv_keys config certs_d daemon netlocs')
# What to do: flags and kv keys to clear, files and (emptied) directories to remove, and the
# new daemon.json (None: leave it).
Plan = namedtuple('Plan', 'flags kv_keys files dirs daemon')


def from_old_charm(flags, kv_keys):
    """True when the unit ran the Charmed Kubernetes docker-registry charm."""
    return any(flag.startswith('charm.docker-registry.') for flag in flags) or \
        'docker_volumes' in kv_keys


def old_tls_paths(config):
    return [config.get(option) for option in ('tls-cert-path', 'tls-key-path', 'tls-ca-path')
            if config.get(option)]


def plan(left, application):
    if not from_old_charm(left.flags, left.kv_keys):
        return Plan([], [], [], [], None)
    flags = sorted(f for f in left.flags if f.startswith(OLD_FLAG_PREFIXES))
    kv_keys = sorted(k for k in left.kv_keys if k in OLD_KV_KEYS)
    files = [paths.OLD_TOKEN_CERTS,
             os.path.join(paths.LOCAL_CA_DIR, 'juju-{}.crt'.format(application))]
    if OLD_TLS_FLAG in left.flags and not left.config.get('tls-cert-blob'):
        # Its cert-provider relation's files, never removed: the relation is gone.
        files += old_tls_paths(left.config)
    dirs = []
    targets = set(old_tls_paths(left.config))
    for netloc_dir, entries in sorted(left.certs_d.items()):
        ours = [name for name, target in entries.items()
                if name in ('client.cert', 'client.key') and target in targets]
        files += [os.path.join(netloc_dir, name) for name in ours]
        if ours and set(entries) == set(ours):
            dirs.append(netloc_dir)
    daemon = None
    insecure = (left.daemon or {}).get('insecure-registries')
    if isinstance(insecure, list) and set(insecure) & set(left.netlocs):
        daemon = dict(left.daemon)
        kept = [entry for entry in insecure if entry not in left.netlocs]
        if kept:
            daemon['insecure-registries'] = kept
        else:
            del daemon['insecure-registries']
    return Plan(flags, kv_keys, files, dirs, daemon)


# --- side effects ---------------------------------------------------------------------------

def _certs_d():
    found = {}
    try:
        names = sorted(os.listdir(paths.DOCKER_CERTS_D))
    except FileNotFoundError:
        return found
    for name in names:
        path = os.path.join(paths.DOCKER_CERTS_D, name)
        if os.path.isdir(path) and not os.path.islink(path):
            found[path] = {entry: os.readlink(os.path.join(path, entry))
                           if os.path.islink(os.path.join(path, entry)) else None
                           for entry in os.listdir(path)}
    return found


def _daemon_json():
    try:
        with open(paths.DOCKER_DAEMON_JSON) as stream:
            return json.load(stream)
    except (FileNotFoundError, ValueError):
        return None


def old_netlocs(config, addresses):
    """host:port names the old charm gave the registry (its get_netloc without a proxy)."""
    netlocs = ['{}:{}'.format(address, config.get('registry-port'))
               for address in addresses if address]
    if config.get('http-host'):
        netlocs.append(urlsplit(config['http-host']).netloc)
    return sorted(set(netlocs))


def adopt(log):
    """Clean up after the old charm, when this unit ran it; returns what was removed."""
    kv = unitdata.kv()
    config = dict(hookenv.config())
    left = Leftovers(get_flags(), list(kv.getrange('', strip=False)), config, _certs_d(),
                     _daemon_json(), old_netlocs(config, [hookenv.unit_private_ip()]))
    steps = plan(left, hookenv.application_name())
    if not from_old_charm(left.flags, left.kv_keys):
        return []
    done = []
    if registry_container.take_over(config.get('registry-name') or 'registry',
                                    hookenv.local_unit()):
        done.append('its container (replaced by ours at the next converge)')
    for path in steps.files:
        if os.path.lexists(path):
            os.unlink(path)
            done.append(path)
    for path in steps.dirs:
        try:
            os.rmdir(path)
            done.append(path)
        except OSError:
            pass
    if steps.daemon is not None:
        tmp = paths.DOCKER_DAEMON_JSON + '.tmp'
        with open(tmp, 'w') as stream:
            json.dump(steps.daemon, stream, indent=2)
        os.replace(tmp, paths.DOCKER_DAEMON_JSON)
        done.append(paths.DOCKER_DAEMON_JSON + ' (insecure-registries)')
    if any(path.startswith(paths.LOCAL_CA_DIR) for path in done):
        subprocess.run(['update-ca-certificates'], capture_output=True)
    for flag in steps.flags:
        clear_flag(flag)
    for key in steps.kv_keys:
        kv.unset(key)
    kv.flush()
    log('Took over from the docker-registry charm: cleared {} flags; removed {}'.format(
        len(steps.flags), ', '.join(done) or 'no files'))
    return done
