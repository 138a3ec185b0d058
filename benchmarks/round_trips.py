#!/usr/bin/env python3
"""Where the mirror action's library spends its time: HTTP round trips per image, by
registry and kind, and the functions that take the most time (cProfile).

Mirrors small images sharing a base layer (mirror_benchmark's `small` case) between two
local registries, twice (the second run finds every image present and skips it).

Usage (as root, from the repository root, with the project venv):
    /opt/docker-registry-venv/bin/python benchmarks/round_trips.py [--small 50]
"""
import argparse
import collections
import concurrent.futures
import cProfile
import os
import pstats
import re
import sys
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mirror_benchmark as bench  # noqa: E402  (sets up the import path and the mocks)
from charms.layer import registry_api, registry_copy, registry_image_actions  # noqa: E402
from tests.support import upstream  # noqa: E402

KINDS = [(re.compile(p), k) for p, k in (
    (r'/v2/$', 'ping'), (r'/manifests/', 'manifest'), (r'/blobs/uploads/\?.*mount=', 'mount'),
    (r'/blobs/uploads/', 'upload'), (r'/blobs/', 'blob'), (r'token', 'token'))]


def counting_send(counts, original):
    def send(self, method, url, headers, body):
        path = url.split('://', 1)[-1]
        kind = next((k for pattern, k in KINDS if pattern.search(path)), 'other')
        counts[(self.netloc, method, kind)] += 1
        return original(self, method, url, headers, body)
    return send


class Inline:
    """A ThreadPoolExecutor that runs everything in the calling thread, for cProfile (which
    sees one thread only)."""

    def __init__(self, max_workers=None):
        pass

    def submit(self, function, *args):
        future = concurrent.futures.Future()
        try:
            future.set_result(function(*args))
        except Exception as error:
            future.set_exception(error)
        return future

    def map(self, function, items):
        return [function(item) for item in items]

    def shutdown(self, wait=True):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def mirror(src, dst, images, prefix):
    client = registry_api.Registry(dst.url)
    with mock.patch.object(registry_image_actions, 'our_registry',
                           return_value=(client, dst.address)), \
            mock.patch.object(registry_image_actions, 'Lock', lambda name: mock.MagicMock()), \
            mock.patch.object(bench.hook_tools, 'action_log', lambda message: None):
        return registry_image_actions.mirror({'images': ' '.join(images.refs(src)),
                                              'prefix': prefix, 'strip-host': True})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--small', type=int, default=50)
    args = parser.parse_args()
    src = upstream.UpstreamRegistry(delete=False, log_level='error').start()
    dst = upstream.UpstreamRegistry(delete=False, log_level='error').start()
    try:
        images = bench.small_images(src, args.small)
        for run in ('first (copies)', 'second (all present)'):
            counts = collections.Counter()
            with mock.patch.object(registry_api.Registry, '_send',
                                   counting_send(counts, registry_api.Registry._send)):
                summary = mirror(src, dst, images, 'rt')['summary']
            print('\n{} run: {}'.format(run, summary))
            print('{:<12} {:<6} {:<9} {:>8} {:>10}'.format(
                'registry', 'method', 'kind', 'requests', 'per image'))
            for (netloc, method, kind), n in sorted(counts.items()):
                print('{:<12} {:<6} {:<9} {:>8} {:>10.2f}'.format(
                    'source' if netloc == src.address else 'destination', method, kind, n,
                    n / args.small))
            print('total per image: {:.2f}'.format(sum(counts.values()) / args.small))
        profile = cProfile.Profile()
        with mock.patch.object(registry_copy, 'ThreadPoolExecutor', Inline), \
                mock.patch.object(registry_image_actions, 'ThreadPoolExecutor', Inline):
            profile.enable()
            summary = mirror(src, dst, images, 'profiled')['summary']
            profile.disable()
        print('\nin one thread, under cProfile: ' + summary)
        pstats.Stats(profile).sort_stats('tottime').print_stats(12)
    finally:
        src.stop(cleanup=True)
        dst.stop(cleanup=True)


if __name__ == '__main__':
    main()
