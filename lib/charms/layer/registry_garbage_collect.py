"""The garbage-collect action: make the registry read-only, sweep, restore the configuration.

Unlike the other image actions it reconfigures the registry, so it runs with the hook
environment (registry_juju) and shows the unit's status while it works.
"""
import json

from charms.reactive import is_flag_set

from charms.layer import registry_config, registry_container, registry_images, registry_juju
from charms.layer import registry_paths as paths
from charms.layer.action_support import ActionError, Lock, bool_param, config, log
from charms.layer.registry_status import ACTIVE, progress, show


def _run_gc(config, dry_run):
    name = config['registry-name']
    image = registry_container.docker('inspect', '--format', '{{.Config.Image}}', name).strip()
    entrypoint, cmd = (registry_container.docker(
        'image', 'inspect', '--format', '{{json .Config.%s}}' % field, image).strip()
        for field in ('Entrypoint', 'Cmd'))
    entrypoint, cmd = json.loads(entrypoint) or [], json.loads(cmd) or []
    binary = registry_images.registry_binary(entrypoint, cmd)
    args = ['exec', name, binary, 'garbage-collect']
    if dry_run:
        args.append('--dry-run')
    args.append(registry_container.config_path_for(cmd))
    return registry_container.docker(*args, timeout=6 * 3600)


def _untagged(data_dir, remove):
    """['repo@digest'] of the manifests delete-untagged removes (removed when remove)."""
    found = []
    for repo, digests in sorted(registry_images.untagged_manifests(data_dir).items()):
        for digest in digests:
            if remove:
                registry_images.remove_manifest(data_dir, repo, digest)
            found.append('{}@{}'.format(repo, digest))
    log('{} untagged manifests {}'.format(len(found), 'deleted' if remove else 'found'))
    return found


def garbage_collect(values):
    dry_run = bool_param(values, 'dry-run')
    untagged = bool_param(values, 'delete-untagged')
    settings = config()
    if is_flag_set('registry.stopped'):
        raise ActionError('The registry is stopped (stop action); start it first')
    if registry_juju.container_status() != 'running':
        raise ActionError('The registry container is not running')
    shared = registry_config.shares_storage(settings)
    if shared and not dry_run and len(registry_juju.registry_units()) > 1:
        # Read-only mode covers this unit only: another unit could write a blob into the
        # shared storage that the sweep then deletes.
        raise ActionError('garbage-collect would only make this unit read-only while the '
                          'other units share its storage; scale to one unit first, or run '
                          'dry-run=true')
    # Sizes come from the unit's disk; object storage gives none.
    data_dir = None if shared else paths.HOST_DATA
    before = registry_images.storage_usage(data_dir) if data_dir else (None, None)
    removed_untagged = []
    with Lock('garbage-collect'):
        if untagged:
            if data_dir is None:
                raise ActionError('delete-untagged needs filesystem storage on the unit')
            if not settings.get('storage-delete'):
                raise ActionError('delete-untagged needs storage-delete=true')
        if dry_run:
            if untagged:
                removed_untagged = _untagged(data_dir, remove=False)
            output = _run_gc(settings, True)
        else:
            outcome = registry_juju.configure(progress, overrides={'storage-read-only': True})
            try:
                if outcome.state != ACTIVE:
                    raise ActionError('Cannot make the registry read-only: ' + outcome.message)
                log('Registry read-only; collecting garbage')
                if untagged:
                    # Only now: a push in between (a multi-arch one writes its platform
                    # manifests before the index that tags them) cannot change the answer.
                    removed_untagged = _untagged(data_dir, remove=True)
                output = _run_gc(settings, False)
            finally:
                restored = registry_juju.configure(progress)
                show(restored)
            if restored.state != ACTIVE:
                raise ActionError('Garbage collected, but the registry did not come back: '
                                  + restored.message)
    marked, eligible, manifests = registry_images.parse_gc_output(output)
    results = {'blobs-marked': str(marked), 'manifests-eligible': str(manifests),
               'untagged-manifests': '\n'.join(removed_untagged)}
    if dry_run:
        size = registry_images.blob_sizes(data_dir, eligible) if data_dir else 0
        results.update({'blobs-eligible': str(len(eligible)), 'bytes-eligible': str(size),
                        'summary': 'dry run: {} blobs ({}) would be freed'.format(
                            len(eligible), registry_images.human_size(size)
                            if data_dir else 'sizes unknown on object storage')})
    elif before[0] is not None:
        after = registry_images.storage_usage(data_dir)
        blobs, size = before[0] - after[0], before[1] - after[1]
        results.update({'blobs-freed': str(blobs), 'bytes-freed': str(size),
                        'summary': '{} blobs ({}) freed; registry restarted'.format(
                            blobs, registry_images.human_size(size))})
    else:
        results.update({'blobs-freed': str(len(eligible)),
                        'summary': '{} blobs freed (sizes unknown on object storage); '
                                   'registry restarted'.format(len(eligible))})
    return results
