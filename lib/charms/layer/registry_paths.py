"""Every path the charm uses, in one place.

HOST_* are paths on the unit. A file the registry reads has a CONTAINER_* twin: where the
container sees it (registry_files mounts one on the other). layer.yaml repeats the
RELATION_* paths, as layer:tls-client's options.
"""
# The registry's configuration on the unit (the image's own config.yml is at the same path in
# the container, where CONTAINER_CONFIG_2X mounts over it).
HOST_DIR = '/etc/docker/registry'
HOST_CONFIG = HOST_DIR + '/config.yml'
CONTAINER_CONFIG_2X = '/etc/docker/registry/config.yml'
CONTAINER_CONFIG_3X = '/etc/distribution/config.yml'
HOST_HTPASSWD = HOST_DIR + '/htpasswd'
CONTAINER_HTPASSWD = '/etc/docker/registry/htpasswd'
HOST_TOKEN_CERTS = HOST_DIR + '/token-root-certs.pem'
CONTAINER_TOKEN_CERTS = '/etc/docker/registry/token-root-certs.pem'
# The container's proxies: docker reads it (--env-file); not mounted.
HOST_ENV = HOST_DIR + '/registry.env'
# The configuration the registry last refused (fingerprint, its logs, the htpasswd it had),
# so that hooks do not retry it until something changes.
HOST_REJECTED = HOST_DIR + '/rejected.json'

# Image data, unless the storage is object storage.
HOST_DATA = '/srv/registry'
CONTAINER_DATA = '/var/lib/registry'

# What the registry serves, copied from whichever source registry_tls.select chose: the charm
# owns this directory, never the operator's tls-*-path files.
HOST_TLS_DIR = HOST_DIR + '/tls'
HOST_TLS_CERT = HOST_TLS_DIR + '/server.crt'
CONTAINER_TLS_CERT = '/etc/docker/registry/tls/server.crt'
HOST_TLS_KEY = HOST_TLS_DIR + '/server.key'
CONTAINER_TLS_KEY = '/etc/docker/registry/tls/server.key'
HOST_TLS_CLIENT_CA = HOST_TLS_DIR + '/client-ca.crt'
CONTAINER_TLS_CLIENT_CA = '/etc/docker/registry/tls/client-ca.crt'
# The CA that verifies the serving certificate, for the unit's own clients; not mounted.
HOST_TLS_CA = HOST_TLS_DIR + '/ca.crt'
# With client certificates required, the unit's own probe and tools present this one
# (self-signed, made on the unit, trusted next to the operator's client CAs).
HOST_UNIT_CLIENT_CERT = HOST_TLS_DIR + '/unit-client.crt'
HOST_UNIT_CLIENT_KEY = HOST_TLS_DIR + '/unit-client.key'

# What layer:tls-client writes from the certificates relation, apart from the operator's
# files so that removing the relation removes only what it wrote (layer.yaml).
RELATION_DIR = HOST_DIR + '/relation'
RELATION_CERT = RELATION_DIR + '/server.crt'
RELATION_KEY = RELATION_DIR + '/server.key'
RELATION_CA = RELATION_DIR + '/ca.crt'

# The charm's own state, outside the registry's configuration.
STATE_DIR = '/var/lib/docker-registry'
# The unlabelled container this unit took over on a switch from the old charm.
TAKEN_OVER = STATE_DIR + '/taken-over-container.json'
# Present while the registry runs on an action's temporary overrides (garbage-collect's
# read-only mode) until the operator's configuration serves again.
TEMPORARY_MARKER = STATE_DIR + '/temporary-config'
# Action results too big for action-set, and exports without a path.
RESULTS_DIR = STATE_DIR + '/results'
EXPORT_DIR = STATE_DIR + '/exports'
# Held by the image action that changes the registry.
IMAGE_ACTIONS_LOCK = '/run/docker-registry-images.lock'

# Where the unit keeps secrets: the registry's config, htpasswd and keys, the charm's state,
# Juju's agent, host keys, password hashes. An action never reads its input there (the
# lines would be quoted in its results).
SECRET_FOLDERS = (HOST_DIR, STATE_DIR, '/var/lib/juju', '/etc/ssl/private', '/etc/ssh',
                  '/etc/shadow', '/etc/gshadow', '/run/secrets')

# What the Charmed Kubernetes charm left on a unit that switches to this one.
OLD_TOKEN_CERTS = HOST_DIR + '/auth_token.pem'
DOCKER_CERTS_D = '/etc/docker/certs.d'
DOCKER_DAEMON_JSON = '/etc/docker/daemon.json'
LOCAL_CA_DIR = '/usr/local/share/ca-certificates'

# The Nagios plugins the nrpe checks run.
NAGIOS_PLUGINS = '/usr/lib/nagios/plugins'
