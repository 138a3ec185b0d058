#!/usr/bin/env python3
"""Mirror benchmark: the mirror action's code vs skopeo sync vs docker pull/tag/push.

One run, same images, same local source registry (Debian's docker-registry binary on
127.0.0.1, filesystem storage), a fresh destination registry per method:
  * mirror  - charms.layer.registry_image_actions.mirror, the action's own code, with only
              the Juju glue replaced (destination client, action-log, lock);
  * skopeo  - `skopeo sync --all --preserve-digests` of the same list (YAML source);
  * docker  - the old charm's method: docker pull, docker tag, docker push, image by image,
              on the host engine (the images it pulls are removed afterwards).
Prints seconds, throughput (source bytes / s), ratios and whether every destination digest
equals the source's. Then times the images action's inventory on a registry of 5,000
repositories (made by cross-repository mounts).

Usage (as root, from the repository root, with the project venv):
    /opt/docker-registry-venv/bin/python benchmarks/mirror_benchmark.py [--mb 512]
        [--repos 5000] [--skip-docker]
The corpus (tests/support standard set: shared layers, many-layer image, OCI and Docker
multi-arch indexes) is built once and cached under /var/tmp/docker-registry-test-cache.
"""
import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from unittest import mock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'lib')]

from tests.support import fixtures, upstream  # noqa: E402

# The charm library runs on Ubuntu units; charmhelpers refuses other platforms on import.
mock.patch('charmhelpers.osplatform.get_platform', return_value='ubuntu').start()
from charms.layer import registry_api, registry_image_actions, registry_images  # noqa: E402


def check_digests(corpus, dst, prefix_path):
    """(matching, total): destination digest equals the source's, ref by ref."""
    api = registry_api.Registry(dst.url)
    good = total = 0
    for entry in corpus.entries:
        for tag in entry.tags:
            total += 1
            got = api.manifest_digest(prefix_path(entry.repo), tag)
            good += got == entry.digest
    return good, total


def run_mirror(corpus, src, dst, parallel):
    values = {'images': ' '.join(corpus.refs(src.address)), 'prefix': 'bench',
              'strip-host': True, 'parallel': parallel}
    client = registry_api.Registry(dst.url)
    with mock.patch.object(registry_image_actions, 'our_registry',
                           return_value=(client, dst.address)), \
            mock.patch.object(registry_image_actions, 'log', lambda message: None), \
            mock.patch.object(registry_image_actions, 'Lock', lambda name: nullcontext()), \
            mock.patch.object(registry_image_actions.hookenv, 'action_fail',
                              side_effect=AssertionError):
        started = time.monotonic()
        results = registry_image_actions.mirror(values)
        seconds = time.monotonic() - started
    return seconds, results['summary']


def run_skopeo(corpus, src, dst):
    images = {}
    for entry in corpus.entries:
        images.setdefault(entry.repo, []).extend(entry.tags)
    with tempfile.NamedTemporaryFile('w', suffix='.yaml') as spec:
        json.dump({src.address: {'images': images, 'tls-verify': False}}, spec)
        spec.flush()
        started = time.monotonic()
        subprocess.run(['skopeo', 'sync', '--all', '--preserve-digests', '--src', 'yaml',
                        '--dest', 'docker', '--dest-tls-verify=false', spec.name,
                        dst.address + '/bench'], check=True, capture_output=True)
        return time.monotonic() - started


def run_docker(corpus, src, dst):
    made = []
    started = time.monotonic()
    try:
        for entry in corpus.entries:
            for tag in entry.tags:
                source = '{}/{}:{}'.format(src.address, entry.repo, tag)
                target = '{}/bench/{}:{}'.format(dst.address, entry.repo, tag)
                subprocess.run(['docker', 'pull', '-q', source], check=True,
                               capture_output=True)
                made.append(source)
                subprocess.run(['docker', 'tag', source, target], check=True)
                made.append(target)
                subprocess.run(['docker', 'push', '-q', target], check=True,
                               capture_output=True)
        return time.monotonic() - started
    finally:
        for ref in made:
            subprocess.run(['docker', 'rmi', ref], capture_output=True)


def many_repositories(registry, count, workers=16):
    """count repositories holding one tiny image, made by mounts from bench/seed."""
    api = registry_api.Registry(registry.url)
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    config_digest = registry_api.sha256(config)
    seed = 'bench/seed'
    api.upload(seed, config_digest, len(config), io.BytesIO(config))
    manifest = json.dumps({'schemaVersion': 2, 'mediaType':
                           'application/vnd.oci.image.manifest.v1+json',
                           'config': {'mediaType': 'application/vnd.oci.image.config.v1+json',
                                      'digest': config_digest, 'size': len(config)},
                           'layers': []}).encode()
    api.put_manifest(seed, '1', 'application/vnd.oci.image.manifest.v1+json', manifest)

    def make(i):
        repo = 'many/r{:05d}'.format(i)
        assert api.mount_blob(repo, config_digest, seed) is True
        api.put_manifest(repo, '1', 'application/vnd.oci.image.manifest.v1+json', manifest)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(make, range(count)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--mb', type=float, default=512)
    parser.add_argument('--repos', type=int, default=5000)
    parser.add_argument('--parallel', type=int, default=4)
    parser.add_argument('--skip-docker', action='store_true')
    args = parser.parse_args()

    corpus = fixtures.corpus(args.mb)
    total = corpus.blob_bytes
    tags = sum(len(e.tags) for e in corpus.entries)
    print('corpus: {} images ({} tags, {} multi-arch), {} distinct blobs, {:.1f} MiB'.format(
        len(corpus.entries), tags, len(corpus.indexes()), len(corpus.blob_digests),
        total / 2 ** 20))
    registries = []

    def registry():
        reg = upstream.UpstreamRegistry(delete=False, log_level='error')
        registries.append(reg)
        return reg.start()

    try:
        src = registry()
        started = time.monotonic()
        src.push_corpus(corpus)
        print('source filled in {:.1f}s'.format(time.monotonic() - started))
        rows = []
        dst = registry()
        seconds, summary = run_mirror(corpus, src, dst, args.parallel)
        rows.append(('mirror action', seconds,
                     check_digests(corpus, dst, lambda r: 'bench/' + r)))
        print('mirror: ' + summary)
        dst = registry()
        seconds = run_skopeo(corpus, src, dst)
        rows.append(('skopeo sync', seconds,
                     check_digests(corpus, dst, lambda r: 'bench/' + r.split('/')[-1])))
        if not args.skip_docker:
            dst = registry()
            seconds = run_docker(corpus, src, dst)
            rows.append(('docker pull/tag/push', seconds,
                         check_digests(corpus, dst, lambda r: 'bench/' + r)))
        print()
        print('{:<22} {:>9} {:>11} {:>16} {:>10}'.format('method', 'seconds', 'MiB/s',
                                                         'vs this method', 'digests'))
        base = rows[0][1]
        for name, seconds, (good, count) in rows:
            print('{:<22} {:>9.2f} {:>11.1f} {:>15.2f}x {:>4}/{:<5}'.format(
                name, seconds, total / 2 ** 20 / seconds, base / seconds, good, count))
        mirror_rate = total / rows[0][1]
        print()
        print('mirror throughput / skopeo sync: {:.2f}x (floor 0.9x)'.format(
            mirror_rate / (total / rows[1][1])))
        if not args.skip_docker:
            print('mirror throughput / docker method: {:.2f}x (floor 5x)'.format(
                mirror_rate / (total / rows[2][1])))
        print('mirror digests identical to the source: {}'.format(
            rows[0][2][0] == rows[0][2][1]))

        big = registry()
        started = time.monotonic()
        many_repositories(big, args.repos)
        print()
        print('{} repositories created in {:.1f}s'.format(args.repos,
                                                          time.monotonic() - started))
        started = time.monotonic()
        found, repos = registry_images.inventory(registry_api.Registry(big.url))
        print('images on {} repositories: {} tags listed in {:.1f}s (catalog pages of 1000)'
              .format(repos, len(found), time.monotonic() - started))
    finally:
        for reg in registries:
            reg.stop(cleanup=True)


if __name__ == '__main__':
    main()
