"""What the status says about the registry's storage and mode.

`status_notes` is pure (options and measurements in, short notes out); `free_fraction`
(statvfs) and `unreachable` (a TCP connection to the object storage endpoint) are the side
effects.
"""
import os
import socket
from urllib.parse import urlsplit

# Below this share of free space on the image data's filesystem, the status warns.
FREE_SPACE_WARNING = 0.10
CONNECT_TIMEOUT = 3


def free_fraction(path):
    """Share of the filesystem holding path that unprivileged writers may still use."""
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    if not stats.f_blocks:
        return None
    return stats.f_bavail / stats.f_blocks


def storage_endpoint(config):
    """(option, URL) of the object storage service the registry must reach, or None.

    Amazon S3 without an endpoint is not checked (its address depends on the region), nor
    is anything behind a proxy (the unit may not reach it directly while the registry can).
    """
    if config.get('registry-http-proxy') or config.get('registry-https-proxy'):
        return None
    for option in ('storage-s3-regionendpoint', 'storage-swift-authurl'):
        if config.get(option) and (option != 'storage-s3-regionendpoint'
                                   or config.get('storage-s3-bucket')):
            return option, config[option]
    return None


def unreachable(url):
    """Why nothing accepts a TCP connection at url's host and port, or None when something
    does. The registry answers /v2/ long before its storage health check notices."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == 'https' else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as error:
        return error.strerror or str(error) or type(error).__name__
    return None


def display_url(url):
    """scheme://host[:port] of url: paths and queries may carry tokens, never shown."""
    parts = urlsplit(url)
    host = parts.hostname or ''
    host = '[{}]'.format(host) if ':' in host else host
    return '{}://{}{}'.format(parts.scheme, host, ':{}'.format(parts.port) if parts.port else '')


def status_notes(config, free_space, storage_problem=None):
    """Notes that follow 'Ready at ...' in the status, in a stable order.

    free_space: [(path, free_fraction() or None)] of the filesystems to watch (image data,
    docker's data root); storage_problem: (option, reason) when the object storage endpoint
    does not answer.
    """
    notes = []
    if config.get('cache-remoteurl'):
        notes.append('pull-through cache of {}'.format(display_url(config['cache-remoteurl'])))
    if config.get('storage-read-only'):
        notes.append('read-only')
    for path, free in free_space:
        if free is not None and free < FREE_SPACE_WARNING:
            notes.append('WARNING: {:.0%} free space left on {}'.format(free, path))
    if storage_problem:
        option, reason = storage_problem
        notes.append('WARNING: {} {} unreachable ({}); pushes and pulls fail'.format(
            option, display_url(config[option]), reason))
    return notes
