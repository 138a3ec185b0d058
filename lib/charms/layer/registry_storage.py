"""What the status says about the registry's storage and mode.

`status_notes` is pure (options and measured free space in, short notes out); `free_fraction`
is the one side effect: statvfs of the image data directory.
"""
import os

# Below this share of free space on the image data's filesystem, the status warns.
FREE_SPACE_WARNING = 0.10


def free_fraction(path):
    """Share of the filesystem holding path that unprivileged writers may still use."""
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    if not stats.f_blocks:
        return None
    return stats.f_bavail / stats.f_blocks


def status_notes(config, shares_storage, free, data_path):
    """Notes that follow 'Ready at ...' in the status, in a stable order.

    free: free_fraction() of the data directory (ignored with object storage).
    """
    notes = []
    if config.get('cache-remoteurl'):
        notes.append('pull-through cache of {}'.format(config['cache-remoteurl']))
    if config.get('storage-read-only'):
        notes.append('read-only')
    if not shares_storage and free is not None and free < FREE_SPACE_WARNING:
        notes.append('WARNING: {:.0%} free space left on {}'.format(free, data_path))
    return notes
