"""The files the registry reads, and converging them together with its container.

`desired_files` and `desired_container` are pure (options, facts and current file content in,
paths, bytes and docker arguments out); `converge` writes what changed and applies the
container spec, putting the previous files back when the registry refuses the new ones;
`ready` waits for the registry to answer, `proves_itself` also for it to keep running.
"""
import json
import os
import tempfile
import time
from collections import namedtuple

from charms.layer import registry_config, registry_container, registry_http, registry_tls
from charms.layer import registry_paths as paths
from charms.layer.registry_auth import htpasswd_content
from charms.layer.registry_validation import decode_base64

PRIVATE = 0o600
# How long a new container must keep running, never restarted, after it first answers.
STEADY_SECONDS = 3

# A file the registry needs: content, mode, and where the container sees it (None: not
# mounted, e.g. the env file docker reads itself).
WantedFile = namedtuple('WantedFile', 'content mode container_path')


def client_identity(config, tls):
    """(cert path, key path) the unit's own clients present, or None when not required."""
    if registry_tls.client_ca(config, tls):
        return paths.HOST_UNIT_CLIENT_CERT, paths.HOST_UNIT_CLIENT_KEY
    return None


def ca_file(tls):
    """Host file that verifies the serving certificate; None without TLS or without a known
    CA (clients then rely on the system's trust store)."""
    return paths.HOST_TLS_CA if tls and tls.ca else None


def proxy_environment(config, no_proxy_hosts):
    """Content of the container's env file: proxies plus a NO_PROXY for local traffic."""
    lines = []
    for option, names in (('registry-http-proxy', ('HTTP_PROXY', 'http_proxy')),
                          ('registry-https-proxy', ('HTTPS_PROXY', 'https_proxy'))):
        if config.get(option):
            lines += ['{}={}'.format(name, config[option]) for name in names]
    if lines:
        hosts = ['localhost', '127.0.0.1', '::1'] + [h for h in no_proxy_hosts if h]
        no_proxy = ','.join(dict.fromkeys(hosts))
        lines += ['NO_PROXY=' + no_proxy, 'no_proxy=' + no_proxy]
    return ''.join(line + '\n' for line in lines).encode()


def desired_files(config, facts, tls, existing_htpasswd, no_proxy_hosts, templates_dir,
                  unit_client_cert=None):
    """{host_path: WantedFile} of everything the registry reads.

    existing_htpasswd: htpasswd contents whose entry is kept when it still verifies (the
    file on disk, the last refused configuration's), so the fingerprint stays the same.
    unit_client_cert: PEM of the unit's own client certificate, trusted with tls-client-auth.
    """
    files = {}
    if config.get('auth-basic-password'):
        files[paths.HOST_HTPASSWD] = WantedFile(
            htpasswd_content(config['auth-basic-user'], config['auth-basic-password'],
                             *existing_htpasswd),
            PRIVATE, paths.CONTAINER_HTPASSWD)
    elif config.get('auth-token-root-certs'):
        files[paths.HOST_TOKEN_CERTS] = WantedFile(decode_base64(config['auth-token-root-certs']),
                                             PRIVATE, paths.CONTAINER_TOKEN_CERTS)
    if tls:
        files[paths.HOST_TLS_CERT] = WantedFile(tls.cert, 0o644, paths.CONTAINER_TLS_CERT)
        files[paths.HOST_TLS_KEY] = WantedFile(tls.key, PRIVATE, paths.CONTAINER_TLS_KEY)
        if tls.ca:  # for the unit's own clients; the registry does not read it
            files[paths.HOST_TLS_CA] = WantedFile(tls.ca, 0o644, None)
        client_ca = registry_tls.client_ca(config, tls)
        if client_ca:
            bundle = client_ca.rstrip(b'\n') + b'\n' + (unit_client_cert or b'')
            files[paths.HOST_TLS_CLIENT_CA] = WantedFile(bundle, 0o644,
                                                   paths.CONTAINER_TLS_CLIENT_CA)
    context = registry_config.registry_context(config, facts)
    rendered = registry_config.render_registry_config(context, templates_dir)
    files[paths.HOST_CONFIG] = WantedFile(rendered.encode(), PRIVATE, None)
    files[paths.HOST_ENV] = WantedFile(proxy_environment(config, no_proxy_hosts), PRIVATE, None)
    return files


def desired_container(config, facts, unit_name, image, files):
    """The ContainerSpec for these files; image is (id, cmd) from the engine."""
    image_id, image_cmd = image
    config_path = registry_container.config_path_for(image_cmd)
    mounts = [(paths.HOST_CONFIG, config_path, True)]
    mounts += [(path, f.container_path, True)
               for path, f in sorted(files.items()) if f.container_path]
    if not registry_config.shares_storage(config):
        mounts.append((paths.HOST_DATA, paths.CONTAINER_DATA, False))
    seen = {path: f.content for path, f in files.items()}
    return registry_container.container_spec(config, unit_name, image_id, image_cmd, mounts,
                                             paths.HOST_ENV, seen, facts.listen_host,
                                             facts.unit_address)


# --- side effects ---------------------------------------------------------------------------

def read_file(path):
    try:
        with open(path, 'rb') as stream:
            return stream.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def write_file(path, content, mode):
    """Atomically replace path (the running container keeps the old file until recreated)."""
    if read_file(path) == content and (os.stat(path).st_mode & 0o777) == mode:
        return False
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp-')
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, 'wb') as stream:
            stream.write(content)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return True


def remove_file(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def snapshot(paths):
    """{path: (content, mode) or None} of paths, to put back with restore()."""
    saved = {}
    for path in paths:
        content = read_file(path)
        saved[path] = None if content is None else (content, os.stat(path).st_mode & 0o777)
    return saved


def restore(saved):
    """Put snapshot()'s files back, as many as can be: on a full disk some writes fail, and
    the error that brought us here is the one to report (a failed atomic write leaves the
    file as it was anyway)."""
    for path, kept in saved.items():
        try:
            if kept is None:
                remove_file(path)
            else:
                write_file(path, *kept)
        except OSError:
            continue


def read_rejection():
    """{'fingerprint', 'logs', 'previous_serves', 'htpasswd'} of the last refused
    configuration, or {}."""
    try:
        return json.loads(read_file(paths.HOST_REJECTED) or b'{}')
    except ValueError:
        return {}


def managed_files():
    """Every file a configuration may write (so a refused one can be undone)."""
    return (paths.HOST_CONFIG, paths.HOST_ENV, paths.HOST_HTPASSWD, paths.HOST_TOKEN_CERTS,
            paths.HOST_TLS_CERT, paths.HOST_TLS_KEY, paths.HOST_TLS_CA, paths.HOST_TLS_CLIENT_CA,
            paths.HOST_UNIT_CLIENT_CERT, paths.HOST_UNIT_CLIENT_KEY)


def converge(config, facts, tls, unit_name, image, no_proxy_hosts, templates_dir,
             proves_itself):
    """Write the files and make the container match; returns apply_spec's outcome.

    proves_itself(container name) -> bool decides whether a new container may replace the
    old one. Raises registry_container.Rejected when it (or, without retrying, the same
    configuration in an earlier hook) did not: the files and container of the last good
    configuration are back in place.
    """
    unit_client_cert = None
    if client_identity(config, tls):
        identity = paths.HOST_UNIT_CLIENT_CERT, paths.HOST_UNIT_CLIENT_KEY
        if not all(read_file(path) for path in identity):
            registry_tls.make_client_identity(*identity)
        unit_client_cert = read_file(paths.HOST_UNIT_CLIENT_CERT)
    rejection = read_rejection()
    existing_htpasswd = [read_file(paths.HOST_HTPASSWD),
                         rejection.get('htpasswd', '').encode() or None]
    files = desired_files(config, facts, tls, existing_htpasswd, no_proxy_hosts,
                          templates_dir, unit_client_cert)
    spec = desired_container(config, facts, unit_name, image, files)
    if rejection.get('fingerprint') == spec.fingerprint:
        raise registry_container.Rejected(rejection['logs'], rejection['previous_serves'])
    registry_container.adopt(unit_name, spec.name)
    managed = managed_files()
    saved = snapshot(managed)
    try:
        os.makedirs(paths.HOST_DATA, exist_ok=True)
        for path, wanted in files.items():
            write_file(path, wanted.content, wanted.mode)
        # Files a previous configuration needed and this one does not.
        kept = set(files) | ({paths.HOST_UNIT_CLIENT_CERT, paths.HOST_UNIT_CLIENT_KEY}
                             if unit_client_cert else set())
        for path in managed:
            if path not in kept:
                remove_file(path)
        outcome = registry_container.apply_spec(spec, proves_itself, lambda: restore(saved))
    except registry_container.Rejected as rejected:
        restore(saved)
        htpasswd = files.get(paths.HOST_HTPASSWD)
        write_file(paths.HOST_REJECTED, json.dumps({
            'fingerprint': spec.fingerprint, 'logs': rejected.logs,
            'previous_serves': rejected.previous_serves,
            'htpasswd': htpasswd.content.decode() if htpasswd else ''}).encode(), PRIVATE)
        raise
    except BaseException:
        # The old container, if it still runs, keeps its files open; a later restart of
        # it must find the same ones.
        restore(saved)
        raise
    remove_file(paths.HOST_REJECTED)
    return outcome


def ready(url, container_name, ca_file=None, client=None, timeout=15):
    """Wait until our container runs and a registry answers GET /v2/.

    The container must be running, and not restarted by the engine, from before the probe
    until after it: a container that cannot bind its port runs for a moment and crash-loops,
    while whatever holds the port answers in its place.
    """
    def serving():
        before = registry_container.container_state(container_name)
        if not (before and before['running']):
            return False
        answered = registry_http.serves(registry_http.probe(url, ca_file, client, timeout=1))
        after = registry_container.container_state(container_name)
        return answered and bool(after and after['running']) and \
            after['started'] == before['started']
    return registry_container.wait_until(serving, timeout)


def proves_itself(url, container_name, ca_file=None, client=None, timeout=30,
                  steady=STEADY_SECONDS):
    """Whether a container just started serves and keeps running.

    The registry must answer GET /v2/ (with its API header) and the container then run for
    `steady` seconds more, the engine never restarting it. Gives up as soon as the
    container stops or restarts: a registry refusing its configuration exits at start.
    """
    first = registry_container.container_state(container_name)

    def same_run():
        state = registry_container.container_state(container_name)
        return bool(first and state and state['running'] and
                    state['started'] == first['started'])

    died = []

    def answered():
        if not same_run():
            died.append(True)
            return True
        return registry_http.serves(registry_http.probe(url, ca_file, client, timeout=1))
    if not registry_container.wait_until(answered, timeout) or died:
        return False
    time.sleep(steady)
    return same_run()
