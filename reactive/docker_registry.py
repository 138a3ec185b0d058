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
  registry.departing         this unit is being removed (a relation said it departs): it
                             serves as it is until its stop hook, rather than reconfigure
                             as each relation goes (dropping the certificates relation
                             would switch it to plain HTTP under clients still sent to it).
  registry.tls.relation      the certificates relation is up and may have written files
                             (under registry_paths.RELATION_DIR) that the charm removes when
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
from charms.reactive import (RelationBase, clear_flag, data_changed, endpoint_from_flag, hook,
                             is_flag_set, set_flag, when, when_any, when_not)

from charms.layer import registry_juju, registry_switch, tls_client
from charms.layer.registry_status import (ACTIVE, BLOCKED, SERIES_UPGRADE, STOPPED,
                                          WAITING_FOR_SECRET, Outcome, progress, show)

# configure_registry's conditions. The handlers that converge themselves and update-status
# check the same tuples.
CONFIGURE_WHEN = ('registry.image.available', 'leadership.set.http-secret')
# Flags that hold the registry as it is: nothing reconfigures or restarts it meanwhile.
HELD = ('registry.stopped', 'registry.series-upgrade', 'registry.departing')
CONFIGURE_WHEN_NOT = ('registry.configured',) + HELD


def _all_set(flags):
    return all(is_flag_set(flag) for flag in flags)


def _none_set(flags):
    return not any(is_flag_set(flag) for flag in flags)


@when_not('registry.docker.installed')
def install_docker():
    progress('Installing docker.io')
    problem = registry_juju.install_docker()
    if problem:
        show(Outcome(BLOCKED, problem))
        return
    set_flag('registry.docker.installed')


@when('leadership.is_leader')
@when_not('leadership.set.http-secret')
def generate_http_secret():
    # Every unit must sign upload state with the same secret, or an upload balanced
    # across units fails; the leader makes one and shares it.
    leadership.leader_set({'http-secret': registry_juju.new_http_secret()})


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
    problem = registry_juju.ensure_image(progress)
    if problem:
        show(Outcome(BLOCKED, problem))
        return
    set_flag('registry.image.available')


@when_any('config.changed', 'leadership.changed.http-secret')
def reconfigure():
    clear_flag('registry.configured')


@when('certificates.available')
def request_certificate():
    set_flag('registry.tls.relation')
    request = registry_juju.certificate_request()
    if request:  # a new one: the addresses, http-host or proxies changed
        tls_client.request_server_cert(*request)


@when_any('tls_client.server.certificate.written', 'tls_client.ca.written')
def serve_new_certificate():
    clear_flag('tls_client.server.certificate.written')
    clear_flag('tls_client.ca.written')
    clear_flag('registry.configured')
    # configure_registry may already have run in this hook (waiting for this very
    # certificate); clearing a flag that was not set would not wake it again.
    if _all_set(CONFIGURE_WHEN) and _none_set(CONFIGURE_WHEN_NOT):
        _converge()


@when('registry.tls.relation')
@when_not('certificates.available')
def forget_relation_certificate():
    # Runs once the interface has dropped its flags, so layer:tls-client no longer rewrites
    # the files removed here.
    registry_juju.forget_relation_certificate()
    clear_flag('registry.tls.relation')
    clear_flag('registry.configured')


@when_not('leadership.is_leader', 'leadership.set.http-secret')
def wait_for_http_secret():
    show(WAITING_FOR_SECRET)


@when(*CONFIGURE_WHEN)
@when_not(*CONFIGURE_WHEN_NOT)
def configure_registry():
    if not registry_juju.image_present():
        # Removed behind the charm's back (docker rmi, a reset engine): get_image fetches it
        # again in this hook, and this handler runs once more.
        clear_flag('registry.image.available')
        return
    _converge()


@hook('update-status', 'start')
def check_registry():
    # start: Juju runs it after the machine rebooted too; the engine restarts the container
    # by its restart policy, and this checks that it did.
    if not is_flag_set('registry.configured') or not _none_set(HELD):
        return
    if registry_juju.temporary_config_left():
        hookenv.log('The registry runs on the temporary configuration of an interrupted '
                    'action; restoring the configuration', hookenv.WARNING)
        clear_flag('registry.configured')
        _converge(note='; restored the configuration an interrupted garbage-collect left '
                       'read-only')
        return
    state = registry_juju.container_status()
    if state == 'running':
        show(Outcome(ACTIVE, registry_juju.ready_message()))  # free space and expiry change
        return
    hookenv.log('Registry container is {}; recreating it'.format(state), hookenv.WARNING)
    clear_flag('registry.configured')
    _converge(note='; restarted the registry container, which was {}'.format(state))


def _converge(note=''):
    outcome = registry_juju.configure(progress)
    if outcome.state == ACTIVE:
        set_flag('registry.configured')
        outcome = outcome._replace(message=outcome.message + note)
    show(outcome)


@when('registry.stopped')
def report_stopped():
    show(STOPPED)


@hook('pre-series-upgrade')
def pre_series_upgrade():
    registry_juju.stop()
    set_flag('registry.series-upgrade')
    clear_flag('registry.configured')
    show(SERIES_UPGRADE)


@hook('post-series-upgrade')
def post_series_upgrade():
    clear_flag('registry.series-upgrade')


@hook('stop')
def stop_registry():
    # The unit is going away: stop serving, but never delete image data.
    registry_juju.stop()


# --- what related applications are told -------------------------------------------------------

@when('endpoint.docker-registry.joined', 'registry.configured')
def publish_to_clients():
    # Every unit publishes the same client-facing address, to every relation: one that
    # joined since the last publication gets it too.
    endpoint = endpoint_from_flag('endpoint.docker-registry.joined')
    payload = registry_juju.client_payload()
    if data_changed('registry.client-payload',
                    [payload, [relation.relation_id for relation in endpoint.relations]]):
        endpoint.set_registry_config(**payload)


@hook('certificates-relation-departed', 'website-relation-departed',
      'docker-registry-relation-departed', 'nrpe-external-master-relation-departed',
      'peer-relation-departed')
def note_departure(relation=None):
    # Juju names the unit itself as the departing one in every relation it leaves; its
    # relations go one by one before the stop hook. (charms.reactive passes the peer
    # relation's interface:peer-discovery instance, as to peers_changed.)
    if hookenv.departing_unit() == hookenv.local_unit():
        set_flag('registry.departing')


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
    services = registry_juju.proxy_services()
    if data_changed('registry.proxy-services', [services, hookenv.relation_ids('website')]):
        endpoint_from_flag('website.available').set_remote(services=services)


@when('website.available')
@when_not('leadership.is_leader')
def withdraw_proxy_services():
    # Only the leader describes the service; a former leader takes its description back
    # (and describes it again if it leads once more).
    if data_changed('registry.proxy-services', None):
        endpoint_from_flag('website.available').set_remote(services=None)


@when('nrpe-external-master.available', 'registry.configured')
def write_nrpe_checks():
    config = hookenv.config()
    checks = registry_juju.nrpe_checks()
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
