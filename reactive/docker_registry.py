"""Reactive glue of the docker-registry charm: react to flags, call the library, set flags.

Flags this charm owns (the only place they are documented):

  registry.docker.installed  docker.io is installed and its engine answers.
  registry.image.available   the configured registry-image is in the unit's engine. Cleared
                             when configure_registry finds it gone, so get_image fetches it
                             again.
  registry.configured        files and container match the current configuration and the
                             registry answered GET /v2/. Cleared by anything that may change
                             what the registry sees or the status says (config, http.secret,
                             upgrade-charm, a certificate written or withdrawn, proxies or
                             peers coming or going) and by update-status when the container
                             is not running.
  registry.stopped           the stop action stopped the registry on purpose; nothing restarts
                             it until the start action clears the flag.
  registry.series-upgrade    between pre-series-upgrade and post-series-upgrade.
  registry.tls.relation      the certificates relation is up and may have written files
                             (under registry_tls.RELATION_DIR) that the charm removes when
                             the relation goes away.
  registry.nrpe.checks       nrpe checks are written; removed with the relation.

Flags read from included layers: config.changed[.<option>] (layer:basic),
leadership.is_leader / leadership.set.http-secret / leadership.changed.http-secret
(layer:leadership), certificates.available (interface:tls-certificates),
tls_client.server.certificate.written / tls_client.ca.written (layer:tls-client; cleared here
once the registry has been told), endpoint.docker-registry.joined (interface:docker-registry),
website.available / endpoint.website.changed / endpoint.website.departed (interface:http),
nrpe-external-master.available (interface:nrpe-external-master).
"""
from charmhelpers.core import hookenv
from charms import leadership
from charms.layer import status
from charms.reactive import (RelationBase, clear_flag, data_changed, endpoint_from_flag, hook,
                             is_flag_set, set_flag, when, when_any, when_not)

from charms.layer import registry_switch, registry_unit, tls_client

# The statuses this hook asked for, in order (see _report).
_requested_statuses = []
# Longer status messages are cut: they come from operator values (validation bounds them;
# this is the last guard against flooding `juju status`).
MAX_STATUS = 1024


def _report(state, message):
    """Ask for the unit's status; the last request of the hook is the one shown.

    layer:status would show the most severe status requested during the hook, but a later
    handler can resolve what an earlier one reported (a certificate written after
    configure_registry waited for it), so the charm hands layer:status one status at the
    end. (Maintenance messages still go out at once through status.maintenance.)
    """
    if not _requested_statuses:
        hookenv.atexit(lambda: getattr(status, _requested_statuses[-1][0])(
            _requested_statuses[-1][1]))
    if len(message) > MAX_STATUS:
        message = message[:MAX_STATUS - 3] + '...'
    _requested_statuses.append((state, message))


@when_not('registry.docker.installed')
def install_docker():
    status.maintenance('Installing docker.io')
    problem = registry_unit.install_docker()
    if problem:
        _report('blocked', problem)
        return
    set_flag('registry.docker.installed')


@when('leadership.is_leader')
@when_not('leadership.set.http-secret')
def generate_http_secret():
    # Every unit must sign upload state with the same secret, or an upload balanced
    # across units fails; the leader makes one and shares it.
    leadership.leader_set({'http-secret': registry_unit.new_http_secret()})


@when('config.changed.registry-image')
def recheck_image():
    clear_flag('registry.image.available')


@hook('upgrade-charm')
def upgrade_charm():
    # A switch from the Charmed Kubernetes charm: its flags, stale TLS and docker client
    # files go; its container, data and htpasswd are adopted (see registry_switch).
    registry_switch.adopt(hookenv.log)
    # A new revision may render another config or want another image; converging again
    # leaves a container whose fingerprint still matches untouched.
    clear_flag('registry.image.available')
    clear_flag('registry.configured')


@when('registry.docker.installed')
@when_not('registry.image.available')
def get_image():
    problem = registry_unit.ensure_image(status.maintenance)
    if problem:
        _report('blocked', problem)
        return
    set_flag('registry.image.available')


@when_any('config.changed', 'leadership.changed.http-secret')
def reconfigure():
    clear_flag('registry.configured')


@when('certificates.available')
def request_certificate():
    set_flag('registry.tls.relation')
    request = registry_unit.certificate_request()
    if request:  # a new one: the addresses, http-host or proxies changed
        tls_client.request_server_cert(*request)


@when_any('tls_client.server.certificate.written', 'tls_client.ca.written')
def serve_new_certificate():
    clear_flag('tls_client.server.certificate.written')
    clear_flag('tls_client.ca.written')
    clear_flag('registry.configured')
    # configure_registry may already have run in this hook (waiting for this very
    # certificate); clearing a flag that was not set would not wake it again.
    if _may_configure():
        _converge()


@when('registry.tls.relation')
@when_not('certificates.available')
def forget_relation_certificate():
    # Runs once the interface has dropped its flags, so layer:tls-client no longer rewrites
    # the files removed here.
    registry_unit.forget_relation_certificate()
    clear_flag('registry.tls.relation')
    clear_flag('registry.configured')


@when_not('leadership.is_leader', 'leadership.set.http-secret')
def wait_for_http_secret():
    _report('waiting', 'Waiting for the leader to share http.secret')


@when('registry.image.available', 'leadership.set.http-secret')
@when_not('registry.configured', 'registry.stopped', 'registry.series-upgrade')
def configure_registry():
    if not registry_unit.image_present():
        # Removed behind the charm's back (docker rmi, a reset engine): get_image fetches it
        # again in this hook, and this handler runs once more.
        clear_flag('registry.image.available')
        return
    _converge()


def _may_configure():
    """configure_registry's conditions, for handlers that converge themselves."""
    return all(is_flag_set(f) for f in ('registry.image.available',
                                        'leadership.set.http-secret')) and \
        not any(is_flag_set(f) for f in ('registry.configured', 'registry.stopped',
                                         'registry.series-upgrade'))


@hook('update-status')
def check_registry():
    if not is_flag_set('registry.configured') or is_flag_set('registry.stopped') \
            or is_flag_set('registry.series-upgrade'):
        return
    if registry_unit.temporary_config_left():
        hookenv.log('The registry runs on the temporary configuration of an interrupted '
                    'action; restoring the configuration', hookenv.WARNING)
        clear_flag('registry.configured')
        _converge(note='; restored the configuration an interrupted garbage-collect left '
                       'read-only')
        return
    state = registry_unit.container_status()
    if state == 'running':
        _report('active', registry_unit.ready_message())  # free space and expiry change
        return
    hookenv.log('Registry container is {}; recreating it'.format(state), hookenv.WARNING)
    clear_flag('registry.configured')
    _converge(note='; restarted the registry container, which was {}'.format(state))


def _converge(note=''):
    outcome = registry_unit.configure(status.maintenance)
    if outcome.ok:
        set_flag('registry.configured')
        _report('active', outcome.message + note)
    elif outcome.waiting:
        _report('waiting', outcome.message)
    else:
        _report('blocked', outcome.message)


@when('registry.stopped')
def report_stopped():
    _report('blocked', 'Registry stopped by the stop action; run the start action')


@hook('pre-series-upgrade')
def pre_series_upgrade():
    registry_unit.stop()
    set_flag('registry.series-upgrade')
    clear_flag('registry.configured')
    _report('blocked', 'Series upgrade in progress')


@hook('post-series-upgrade')
def post_series_upgrade():
    clear_flag('registry.series-upgrade')


@hook('stop')
def stop_registry():
    # The unit is going away: stop serving, but never delete image data.
    registry_unit.stop()


# --- what related applications are told -------------------------------------------------------

@when('endpoint.docker-registry.joined', 'registry.configured')
def publish_to_clients():
    # Every unit publishes the same client-facing address; the interface only sends
    # what changed, so this runs in every hook and covers units that join later.
    endpoint = endpoint_from_flag('endpoint.docker-registry.joined')
    endpoint.set_registry_config(**registry_unit.client_payload())


@when_any('endpoint.website.changed', 'endpoint.website.departed')
def proxies_changed():
    # The client-facing address, the certificate's names and the status follow the proxies.
    clear_flag('endpoint.website.changed')
    clear_flag('endpoint.website.departed')
    clear_flag('registry.configured')


@hook('peer-relation-joined', 'peer-relation-departed')
def peers_changed(peers=None):
    # Which unit is active behind the proxy depends on who is there. (charms.reactive passes
    # the relation's interface:peer-discovery instance; the addresses come from hookenv.)
    clear_flag('registry.configured')


@when('leadership.is_leader', 'website.available', 'registry.configured')
def publish_proxy_services():
    endpoint_from_flag('website.available').set_remote(services=registry_unit.proxy_services())


@when('website.available')
@when_not('leadership.is_leader')
def withdraw_proxy_services():
    # Only the leader describes the service; a former leader takes its description back.
    endpoint_from_flag('website.available').set_remote(services=None)


@when('nrpe-external-master.available', 'registry.configured')
def write_nrpe_checks():
    config = hookenv.config()
    checks = registry_unit.nrpe_checks()
    groups = config['nagios_servicegroups'] or config['nagios_context']
    changed = data_changed('registry.nrpe', [checks, config['nagios_context'], groups])
    if is_flag_set('registry.nrpe.checks') and not changed:
        return
    nrpe = endpoint_from_flag('nrpe-external-master.available')
    nrpe.removed()  # checks this configuration no longer has (e.g. the certificate's)
    for check in checks:
        nrpe.add_check(check.args, name=check.name, description=check.description,
                       context=config['nagios_context'], servicegroups=groups)
    nrpe.added()
    set_flag('registry.nrpe.checks')


@when('registry.nrpe.checks')
@when_not('nrpe-external-master.available')
def remove_nrpe_checks():
    RelationBase.from_name('nrpe-external-master').removed()
    clear_flag('registry.nrpe.checks')
