"""The unit's Juju-facing facade: Juju facts in, library calls out.

Handlers and actions call these functions; they read the hook environment (config,
addresses, leadership, resources), call the pure modules, and perform the side effects
through registry_files (the files the registry reads) and registry_container (its
container).
"""
import datetime
import os
import secrets
import socket
import subprocess
from urllib.parse import urlsplit

import yaml

from charmhelpers.core import hookenv, unitdata

from charms.layer import (action_support, registry_access, registry_config, registry_container,
                          registry_files, registry_rejection, registry_relations,
                          registry_storage, registry_tls)
from charms.layer import registry_paths as paths
from charms.layer.registry_status import ACTIVE, BLOCKED, WAITING, Outcome
from charms.layer.registry_validation import (check_image, describe, extra_names, normalize,
                                              validate)


def options():
    """The charm's options as every part of it reads them (registry_validation.normalize)."""
    return normalize(hookenv.config())


def install_docker():
    """Install docker.io; returns a problem message or None."""
    # Imported here: only the install hook needs it, and charmhelpers.fetch probes the
    # platform's release when imported.
    from charmhelpers.fetch import apt_install, apt_update
    try:
        try:
            apt_install(['docker.io'], fatal=True)
        except subprocess.CalledProcessError:
            apt_update(fatal=True)  # a fresh unit may not have package lists yet
            apt_install(['docker.io'], fatal=True)
    except subprocess.CalledProcessError as error:
        return 'Cannot install docker.io: {}'.format(error)
    try:
        registry_container.docker('info', timeout=60)
    except registry_container.DockerError as error:
        return 'Docker engine not answering: {}'.format(error)
    return None


def new_http_secret():
    return secrets.token_hex(32)


def ensure_image(progress):
    """Make registry-image available: local, else the resource, else pull.

    progress(message) shows what it does. Returns a problem message or None.
    """
    config = options()
    problems = check_image(config)
    if problems:
        return describe(problems)
    image = config['registry-image']
    progress('Checking for registry image {}'.format(image))
    if registry_container.image_info(image):
        return None
    try:
        archive = hookenv.resource_get('registry-image')
    except Exception:  # older Juju raises when the resource is unknown
        archive = None
    problems = []
    if archive:
        progress('Loading registry image from the registry-image resource')
        try:
            registry_container.load_image(archive)
        except (registry_container.DockerError, OSError) as error:
            problems.append('loading the resource failed: {}'.format(error))
        if registry_container.image_info(image):
            return None
        if not problems:
            problems.append('the registry-image resource does not contain {}'.format(image))
    progress('Pulling registry image {}'.format(image))
    try:
        registry_container.pull_image(image)
    except registry_container.DockerError as error:
        problems.append('pull failed: {}'.format(error.args[0].splitlines()[-1][:160]))
    if registry_container.image_info(image):
        return None
    return 'Cannot get registry image {}: {}'.format(image, '; '.join(problems))


def unit_address():
    """The unit's ingress address on the docker-registry binding."""
    try:
        return hookenv.network_get('docker-registry')['ingress-addresses'][0]
    except (KeyError, IndexError, TypeError, NotImplementedError, OSError,
            subprocess.CalledProcessError):
        return hookenv.unit_private_ip()


def facts(config, tls, distribution3=False):
    """This unit's registry_config.Facts for config; tls: what it serves
    (registry_access.serving_tls)."""
    listen_host = unit_address() if config.get('listen-on-unit-address') else ''
    tls_settings = None
    if tls:
        tls_settings = registry_config.TlsSettings(
            config['tls-minimum-version'], bool(registry_tls.client_ca(config, tls)))
    secret = hookenv.leader_get('http-secret') or ''
    return registry_config.Facts(listen_host, secret, tls_settings, distribution3,
                                 unit_address())


def related_addresses(endpoint):
    """[(unit, address)] of the remote units on every relation of endpoint."""
    found = []
    for rid in hookenv.relation_ids(endpoint):
        for unit in hookenv.related_units(rid):
            data = hookenv.relation_get(rid=rid, unit=unit) or {}
            address = data.get('ingress-address') or data.get('private-address')
            if address:
                found.append((unit, address))
    return found


def proxy_addresses():
    """Addresses of the reverse proxy units on the website relation."""
    return [address for _, address in related_addresses('website')]


CERTIFICATE_REQUEST_KEY = 'registry.certificate-request'


def certificate_request():
    """(common name, SANs) when they differ from what was last requested, else None."""
    config = options()
    try:
        http_host = urlsplit(config['http-host']).hostname if config.get('http-host') else None
    except ValueError:  # not a URL: validation blocks on it; request without it meanwhile
        http_host = None
    common_name, sans = registry_tls.request_names(
        unit_address(), hookenv.unit_public_ip(), socket.gethostname(), http_host,
        sorted(proxy_addresses()), extra_names(config))
    kv = unitdata.kv()
    if kv.get(CERTIFICATE_REQUEST_KEY) == [common_name, sans]:
        return None
    kv.set(CERTIFICATE_REQUEST_KEY, [common_name, sans])
    return common_name, sans


def forget_relation_certificate():
    """Remove what the certificates relation wrote; a new relation requests afresh."""
    for path in (paths.RELATION_CERT, paths.RELATION_KEY,
                 paths.RELATION_CA):
        registry_files.remove_file(path)
    unitdata.kv().unset(CERTIFICATE_REQUEST_KEY)


def local_host(config):
    """Address the unit itself reaches its registry on."""
    return registry_access.local_host(config, unit_address)


def local_url(config, tls):
    return registry_access.local_url(config, tls, unit_address)


def client_netloc(config):
    """host:port clients use (registry_access.client_netloc)."""
    return registry_access.client_netloc(config, proxy_addresses, unit_address)


def registry_units():
    """[(unit name, address)] of every unit of the application: this one and its peers."""
    return [(hookenv.local_unit(), unit_address())] + related_addresses('peer')


def client_payload():
    """What the docker-registry relation publishes (registry_relations.client_payload)."""
    config = options()
    tls = registry_access.serving_tls(config)
    return registry_relations.client_payload(
        client_netloc(config), bool(tls), tls.ca.decode() if tls and tls.ca else None,
        config.get('auth-basic-user'), config.get('auth-basic-password'))


def proxy_services():
    """The website relation's `services` YAML: every unit behind the reverse proxy."""
    config = options()
    tls = registry_access.serving_tls(config)
    services = registry_relations.proxy_services(
        hookenv.service_name(), registry_units(), config['registry-port'],
        registry_config.shares_storage(config), bool(tls),
        bool(registry_tls.client_ca(config, tls)))
    return yaml.safe_dump(services, default_flow_style=False)


def nrpe_checks():
    config = options()
    tls = registry_access.serving_tls(config)
    data_dir = None if registry_config.shares_storage(config) else paths.HOST_DATA
    return registry_relations.nrpe_checks(
        hookenv.local_unit(), local_host(config), config['registry-port'], bool(tls),
        bool(registry_tls.client_ca(config, tls)), data_dir, config['tls-expiry-warning-days'])


def sync_ports(config):
    wanted = {'{}/tcp'.format(config['registry-port'])}
    if config.get('prometheus-metrics'):
        wanted.add('{}/tcp'.format(config['debug-port']))
    opened = {p.lower() for p in hookenv.opened_ports()}
    for port in opened - wanted:
        number, proto = port.split('/')
        hookenv.close_port(int(number), proto.upper())
    for port in wanted - opened:
        number, proto = port.split('/')
        hookenv.open_port(int(number), proto.upper())


def configure(progress, overrides=None):
    """Converge the registry on the current config and check it serves.

    overrides: options to run with for now instead of the operator's (an action may put
    the registry in read-only mode); the next configure without them restores the config.
    """
    config = dict(options(), **(overrides or {}))
    others = registry_container.other_units(hookenv.local_unit())
    if others:
        return Outcome(BLOCKED, 'Another registry unit ({}) runs on this machine and '
                       'would share {} and {}; place each unit on its own machine'.format(
                           ', '.join(others), paths.HOST_DIR, paths.HOST_DATA))
    if overrides:
        _mark_temporary(overrides)
    image = registry_container.image_info(config['registry-image'])
    if image is None:
        return Outcome(BLOCKED, 'Registry image {} disappeared from the engine'
                       .format(config['registry-image']))
    distribution3 = registry_container.is_distribution3(image[1])
    problems = validate(config, distribution3)
    tls = None if problems else registry_access.serving_tls(config)
    if tls:
        problems = registry_tls.material_problems(config, tls, registry_tls.inspect(tls), _now())
    if problems:
        # Leave the running registry on its last good configuration.
        return Outcome(BLOCKED, describe(problems))
    registry_facts = facts(config, tls, distribution3)
    if not tls and config.get('tls-required'):
        if hookenv.relation_ids('certificates'):
            return Outcome(WAITING, 'Waiting for a certificate from the certificates '
                           'relation (tls-required)')
        return Outcome(BLOCKED, 'tls-required: no certificate; relate a CA '
                       '(certificates) or set tls-cert-blob and tls-key-blob')
    progress('Configuring the registry')
    no_proxy = [unit_address(), hookenv.unit_private_ip()]
    url, ca, client = (local_url(config, tls), registry_files.ca_file(tls),
                       registry_files.client_identity(config, tls))
    try:
        outcome = registry_files.converge(
            config, registry_facts, tls, hookenv.local_unit(), image, no_proxy,
            registry_config.templates_dir(hookenv.charm_dir()),
            lambda name: registry_files.proves_itself(url, name, ca, client))
    except registry_container.Rejected as rejected:
        return Outcome(BLOCKED, registry_rejection.message(
            rejected.logs, config, registry_facts.http_secret, rejected.previous_serves))
    except registry_container.DockerError as error:
        return Outcome(BLOCKED, 'Cannot run the registry container: {}'.format(error))
    except OSError as error:
        # A full disk or a read-only /etc: the previous files were put back where possible.
        return Outcome(BLOCKED, 'Cannot write the registry configuration: {}'.format(
            error.strerror or error))
    hookenv.log('Registry container {}'.format(outcome))
    sync_ports(config)
    if not registry_files.ready(url, config['registry-name'], ca, client):
        return Outcome(BLOCKED, 'Registry container {} but does not answer /v2/'
                       .format(container_status()))
    if not overrides and os.path.exists(paths.TEMPORARY_MARKER):
        os.unlink(paths.TEMPORARY_MARKER)
    return Outcome(ACTIVE, ready_message(config, tls))


def _mark_temporary(overrides):
    os.makedirs(os.path.dirname(paths.TEMPORARY_MARKER), mode=0o700, exist_ok=True)
    with open(paths.TEMPORARY_MARKER, 'w') as stream:
        stream.write(' '.join(sorted(overrides)) + '\n')


def temporary_config_left():
    """The registry runs on overrides of an action that no longer runs (killed while it
    restored the configuration)."""
    return os.path.exists(paths.TEMPORARY_MARKER) and not action_support.lock_held()


def ready_message(config=None, tls=None):
    """'Ready at <client address> (http|https[, proxied])' and what else an operator should
    know."""
    if config is None:
        config = options()
        tls = registry_access.serving_tls(config)
    watched = [] if registry_config.shares_storage(config) else [paths.HOST_DATA]
    engine_root = registry_container.engine_root()
    watched += [engine_root] if engine_root else []
    endpoint = registry_storage.storage_endpoint(config)
    reason = registry_storage.unreachable(endpoint[1]) if endpoint else None
    notes = registry_storage.status_notes(
        config, [(path, registry_storage.free_fraction(path)) for path in watched],
        (endpoint[0], reason) if reason else None)
    if config.get('auth-basic-password') and not tls:
        # Policy (README): warn rather than block, since blocking would leave the previous,
        # possibly password-less, configuration serving.
        notes.append('WARNING: basic auth over plain HTTP sends the password in clear; '
                     'configure TLS')
    if tls:
        expiry = registry_tls.expiry_note(registry_tls.inspect(tls), _now(),
                                          config['tls-expiry-warning-days'])
        notes += [expiry] if expiry else []
    scheme = 'https' if tls else 'http'
    if proxy_addresses():
        scheme += ', proxied'
        notes.append(registry_relations.proxy_role(
            hookenv.local_unit(), [unit for unit, _ in registry_units()],
            registry_config.shares_storage(config)))
    return '; '.join(['Ready at {} ({})'.format(client_netloc(config), scheme)] + notes)


def _now():
    # openssl reports certificate dates in UTC; compare naive UTC with naive UTC.
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def container_status():
    """'running', docker's state of a stopped container (e.g. 'exited'), or 'removed'."""
    state = registry_container.container_state(options()['registry-name'])
    if state is None:
        return 'removed'
    return 'running' if state['running'] else state['status']


def image_present():
    return registry_container.image_info(options()['registry-image']) is not None


def stop():
    registry_container.stop(options()['registry-name'], hookenv.local_unit())
