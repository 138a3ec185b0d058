#!/usr/bin/env python3
"""Mirror and push benchmark: the image actions end to end, as an operator runs them, and
the library alone, each against skopeo on the same images in the same run.

A unit is deployed with `localjuju` (its public API: Model.deploy/destroy) on default
configuration; every method copies into that unit's registry from one local source registry
(Debian's docker-registry binary on 127.0.0.1), each run under its own prefix so that
nothing is present yet. Cases (see benchmarks/README.md):

  corpus  the 512 MiB standard corpus (shared layers, an 8-layer image, OCI and Docker
          multi-arch indexes): `mirror` vs `skopeo sync --all --preserve-digests`;
  small   300 small images sharing a base layer: `mirror` vs skopeo sync;
  push    the push action once per image of the corpus vs `skopeo copy --all` per image.

Methods per case:
  action  `bin/localjuju run <unit> mirror|push ...`: the whole action, start included;
  library charms.layer.registry_image_actions.mirror/push in this process, with only the
          Juju glue replaced (destination client, action-log, lock);
  skopeo  skopeo with a private, empty blob-info cache (otherwise it would mount blobs it
          saw in an earlier run instead of copying them).
Every run checks that every destination digest equals the source's. Ratios are of the best
of --runs runs; the order of the methods rotates from run to run.

Usage (as root, from the repository root, with the project venv):
    /opt/docker-registry-venv/bin/python benchmarks/mirror_benchmark.py
        [--runs 3] [--mb 512] [--small 300] [--cases corpus,small,push]
        [--charm PATH] [--repos 5000] [--docker]
--repos times the images action's inventory on that many repositories (0 skips it);
--docker adds the old charm's docker pull/tag/push on the corpus.
"""
import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from unittest import mock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'tools'), os.path.join(ROOT, 'lib')]  # as pytest.ini

import localjuju  # noqa: E402
from tests.support import fixtures, upstream  # noqa: E402
from tests.support.charm_build import built_charm  # noqa: E402
from tests.support.deployment import free_port_pair  # noqa: E402

# The charm library runs on Ubuntu units; charmhelpers refuses other platforms on import.
mock.patch('charmhelpers.osplatform.get_platform', return_value='ubuntu').start()
from charms.layer import hook_tools, registry_api, registry_image_actions  # noqa: E402

APP = 'docker-registry'
UNIT = APP + '/0'
OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip'
SKOPEO_CACHE = '/var/lib/containers/cache'


# --- what is copied ------------------------------------------------------------------------

class Images:
    """A case's images in the source registry: [(repository, tag, digest)]."""

    def __init__(self, name, items, total_bytes):
        self.name, self.items, self.total_bytes = name, items, total_bytes

    def refs(self, src):
        return ['{}/{}:{}'.format(src.address, repo, tag) for repo, tag, _ in self.items]


def corpus_images(corpus):
    items = [(e.repo, tag, e.digest) for e in corpus.entries for tag in e.tags]
    return Images('corpus', items, corpus.blob_bytes)


def small_images(src, count, base_mb=4, own_kb=16):
    """count images of one shared base layer plus one small layer and a config each,
    pushed to the source registry."""
    api = registry_api.Registry(src.url)
    rng = random.Random(14)
    base = rng.randbytes(base_mb << 20)
    base_digest = registry_api.sha256(base)
    api.upload('small/base', base_digest, len(base), io.BytesIO(base))

    def make(i):
        repo = 'small/img-{:03d}'.format(i)
        own = random.Random(i).randbytes(own_kb << 10)
        config = json.dumps({'architecture': 'amd64', 'os': 'linux', 'rootfs': {
            'type': 'layers', 'diff_ids': [base_digest, registry_api.sha256(own)]},
            'config': {'Labels': {'n': str(i)}}}).encode()
        assert api.mount_blob(repo, base_digest, 'small/base') is True
        for blob in (own, config):
            api.upload(repo, registry_api.sha256(blob), len(blob), io.BytesIO(blob))
        manifest = json.dumps({'schemaVersion': 2, 'mediaType': OCI_MANIFEST, 'config': {
            'mediaType': OCI_CONFIG, 'digest': registry_api.sha256(config),
            'size': len(config)}, 'layers': [
            {'mediaType': OCI_LAYER, 'digest': base_digest, 'size': len(base)},
            {'mediaType': OCI_LAYER, 'digest': registry_api.sha256(own), 'size': len(own)}]},
            sort_keys=True).encode()
        api.put_manifest(repo, '1.0', OCI_MANIFEST, manifest)
        return repo, '1.0', registry_api.sha256(manifest), len(own) + len(config)

    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(make, range(count)))
    return Images('small', [m[:3] for m in made], len(base) + sum(m[3] for m in made))


def digests_match(dst_url, images, repo_of):
    """(matching, total): each destination digest equals the source's."""
    api = registry_api.Registry(dst_url)
    good = sum(api.manifest_digest(repo_of(repo), tag) == digest
               for repo, tag, digest in images.items)
    return good, len(images.items)


# --- methods -------------------------------------------------------------------------------

class Unit:
    """The deployed charm: its model and registry."""

    def __init__(self, charm, home):
        self.home = home
        self.model = localjuju.Model(home=home, name='bench-' + uuid.uuid4().hex[:6])
        port, debug = free_port_pair()
        self.model.deploy(charm, APP, config={'registry-port': port, 'debug-port': debug},
                          resources={'registry-image': str(fixtures.cache_dir() /
                                                           'registry-image.tar')})
        unit = self.model.status()['applications'][APP]['units'][UNIT]
        if unit['workload-status']['current'] != 'active':
            raise RuntimeError('the unit is not ready: {}'.format(unit['workload-status']))
        self.address = '{}:{}'.format(unit['public-address'], port)
        self.url = 'http://' + self.address

    def run(self, action, **params):
        """Seconds of `bin/localjuju run`, as an operator types it."""
        argv = [os.path.join(ROOT, 'bin', 'localjuju'), '--quiet', '--home', self.home,
                '--model', self.model.name, 'run', UNIT, action] + \
            ['{}={}'.format(k, v) for k, v in params.items()]
        started = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True)
        seconds = time.monotonic() - started
        if done.returncode != 0:
            raise RuntimeError('{} failed: {}'.format(action, done.stdout[-3000:]))
        return seconds

    def destroy(self):
        self.model.destroy()


def library(function, values, unit):
    """Seconds of the action's function in this process, into the unit's registry."""
    client = registry_api.Registry(unit.url)
    with mock.patch.object(registry_image_actions, 'our_registry',
                           return_value=(client, unit.address)), \
            mock.patch.object(hook_tools, 'action_log', lambda message: None), \
            mock.patch.object(registry_image_actions, 'Lock', lambda name: nullcontext()), \
            mock.patch.object(registry_image_actions, 'fail', side_effect=AssertionError):
        started = time.monotonic()
        function(values)
        return time.monotonic() - started


def skopeo(args):
    """Seconds of one skopeo command, with a blob-info cache of its own (a private mount
    namespace with an empty tmpfs over the system's cache)."""
    script = 'mkdir -p {0} && mount -t tmpfs none {0} && exec "$@"'.format(SKOPEO_CACHE)
    argv = ['unshare', '--mount', '--propagation', 'private', 'sh', '-ec', script, 'skopeo',
            'skopeo', '--insecure-policy'] + args
    started = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True)
    return time.monotonic() - started


def skopeo_sync(images, src, dst, prefix):
    spec = {}
    for repo, tag, _ in images.items:
        spec.setdefault(repo, []).append(tag)
    with tempfile.NamedTemporaryFile('w', suffix='.yaml') as listing:
        json.dump({src.address: {'images': spec, 'tls-verify': False}}, listing)
        listing.flush()
        return skopeo(['sync', '--all', '--preserve-digests', '--src', 'yaml', '--dest',
                       'docker', '--dest-tls-verify=false', listing.name,
                       dst + '/' + prefix])


def skopeo_copies(images, src, dst, prefix):
    return sum(skopeo(['copy', '--all', '--preserve-digests', '--src-tls-verify=false',
                       '--dest-tls-verify=false',
                       'docker://{}/{}:{}'.format(src.address, repo, tag),
                       'docker://{}/{}/{}:{}'.format(dst, prefix, repo, tag)])
               for repo, tag, _ in images.items)


def mirror_methods(images, src, unit):
    values = {'images': ' '.join(images.refs(src)), 'strip-host': True, 'parallel': 4}
    return {
        'action': lambda prefix: (unit.run('mirror', prefix=prefix, **values),
                                  lambda r: prefix + '/' + r),
        'library': lambda prefix: (library(registry_image_actions.mirror,
                                           dict(values, prefix=prefix), unit),
                                   lambda r: prefix + '/' + r),
        # skopeo sync keeps only the last path component under the destination.
        'skopeo': lambda prefix: (skopeo_sync(images, src, unit.address, prefix),
                                  lambda r: prefix + '/' + r.split('/')[-1]),
    }


def push_methods(images, src, unit):
    def action(prefix):
        seconds = sum(unit.run('push', image=ref, pull=True, tag='{}/{}:{}'.format(
            prefix, repo, tag)) for ref, (repo, tag, _) in zip(images.refs(src), images.items))
        return seconds, lambda r: prefix + '/' + r

    def in_process(prefix):
        seconds = sum(library(registry_image_actions.push, {
            'image': ref, 'pull': True, 'tag': '{}/{}:{}'.format(prefix, repo, tag)}, unit)
            for ref, (repo, tag, _) in zip(images.refs(src), images.items))
        return seconds, lambda r: prefix + '/' + r

    return {'action': action, 'library': in_process,
            'skopeo': lambda prefix: (skopeo_copies(images, src, unit.address, prefix),
                                      lambda r: prefix + '/' + r)}


def docker_method(images, src, unit):
    """The old charm's method: docker pull, tag, push, image by image, on the host engine."""
    def run(prefix):
        made = []
        started = time.monotonic()
        try:
            for repo, tag, _ in images.items:
                source = '{}/{}:{}'.format(src.address, repo, tag)
                target = '{}/{}/{}:{}'.format(unit.address, prefix, repo, tag)
                subprocess.run(['docker', 'pull', '-q', source], check=True,
                               capture_output=True)
                made.append(source)
                subprocess.run(['docker', 'tag', source, target], check=True)
                made.append(target)
                subprocess.run(['docker', 'push', '-q', target], check=True,
                               capture_output=True)
            return time.monotonic() - started, lambda r: prefix + '/' + r
        finally:
            for ref in made:
                subprocess.run(['docker', 'rmi', ref], capture_output=True)
    return run


# --- the benchmark -------------------------------------------------------------------------

def measure(case, images, methods, unit, runs):
    """{method: [seconds per run]}; raises when a digest differs."""
    names = list(methods)
    seconds = {name: [] for name in names}
    for run in range(runs):
        order = names[run % len(names):] + names[:run % len(names)]
        for name in order:
            prefix = 'b{}/{}-{}-{}'.format(os.getpid() % 1000, case, name, run)
            took, repo_of = methods[name](prefix)
            good, total = digests_match(unit.url, images, repo_of)
            if good != total:
                raise RuntimeError('{} {}: {}/{} digests equal the source\'s'.format(
                    case, name, good, total))
            seconds[name].append(took)
            print('  run {} {:<8} {:8.2f} s  digests {}/{}'.format(
                run + 1, name, took, good, total), flush=True)
    return seconds


def report(case, images, seconds, target):
    best = {name: min(values) for name, values in seconds.items()}
    print('\n{}: {} images, {:.1f} MiB; best of {} runs (load {})'.format(
        case, len(images.items), images.total_bytes / 2 ** 20,
        len(next(iter(seconds.values()))), os.getloadavg()[0]))
    print('{:<10} {:>9} {:>9} {:>14}'.format('method', 'seconds', 'MiB/s', 'skopeo / it'))
    for name, value in best.items():
        print('{:<10} {:>9.2f} {:>9.1f} {:>13.2f}x'.format(
            name, value, images.total_bytes / 2 ** 20 / value, best['skopeo'] / value))
    print(target(best), flush=True)


TARGETS = {
    'corpus': lambda b: 'target: action >= 1.5x skopeo sync: {:.2f}x'.format(
        b['skopeo'] / b['action']),
    'small': lambda b: 'target: action >= 1.2x skopeo sync: {:.2f}x'.format(
        b['skopeo'] / b['action']),
    'push': lambda b: 'target: push action <= 1.5x skopeo copy --all: {:.2f}x'.format(
        b['action'] / b['skopeo']),
}


def many_repositories(registry_url, count, workers=16):
    """count repositories holding one tiny image, made by mounts from bench/seed."""
    api = registry_api.Registry(registry_url)
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    config_digest = registry_api.sha256(config)
    api.upload('bench/seed', config_digest, len(config), io.BytesIO(config))
    manifest = json.dumps({'schemaVersion': 2, 'mediaType': OCI_MANIFEST, 'config': {
        'mediaType': OCI_CONFIG, 'digest': config_digest, 'size': len(config)},
        'layers': []}).encode()

    def make(i):
        repo = 'many/r{:05d}'.format(i)
        assert api.mount_blob(repo, config_digest, 'bench/seed') is True
        api.put_manifest(repo, '1', OCI_MANIFEST, manifest)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(make, range(count)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--mb', type=float, default=512)
    parser.add_argument('--small', type=int, default=300)
    parser.add_argument('--cases', default='corpus,small,push')
    parser.add_argument('--charm', default=None,
                        help='a built charm to deploy (default: this checkout, built)')
    parser.add_argument('--repos', type=int, default=5000)
    parser.add_argument('--docker', action='store_true')
    args = parser.parse_args()
    cases = args.cases.split(',')

    print('load average {:.2f} {:.2f} {:.2f} on {} CPUs'.format(
        *os.getloadavg(), os.cpu_count()))
    home = tempfile.mkdtemp(prefix='mirror-benchmark-', dir='/var/tmp')
    src = upstream.UpstreamRegistry(delete=False, log_level='error')
    unit = None
    try:
        src.start()
        corpus = fixtures.corpus(args.mb)
        started = time.monotonic()
        src.push_corpus(corpus)
        big = corpus_images(corpus)
        small = small_images(src, args.small) if 'small' in cases else None
        print('source filled in {:.1f}s'.format(time.monotonic() - started))
        started = time.monotonic()
        unit = Unit(args.charm or built_charm(), home)
        print('unit deployed in {:.1f}s at {}'.format(time.monotonic() - started,
                                                      unit.address), flush=True)
        for case in cases:
            images = small if case == 'small' else big
            methods = push_methods(images, src, unit) if case == 'push' else \
                mirror_methods(images, src, unit)
            if case == 'corpus' and args.docker:
                methods['docker'] = docker_method(images, src, unit)
            print('\n{} ({} images)'.format(case, len(images.items)), flush=True)
            report(case, images, measure(case, images, methods, unit, args.runs),
                   TARGETS[case])
        if args.repos:
            started = time.monotonic()
            many_repositories(unit.url, args.repos)
            print('\n{} repositories created in {:.1f}s'.format(
                args.repos, time.monotonic() - started))
            print('images action on {} repositories: {:.1f}s'.format(
                args.repos, unit.run('images', repository='many/*')))
    finally:
        if unit:
            unit.destroy()
        shutil.rmtree(home, ignore_errors=True)  # the model in it is destroyed by then
        src.stop(cleanup=True)


if __name__ == '__main__':
    main()
