"""pytest fixtures for functional tests. Import them from a conftest.py::

    from tests.support.fixtures import *  # noqa: F401,F403

Session fixtures
  charm_path              the built charm (charm-tools with the upstream layers),
                          current with the sources (tests.support.charm_build).
  support_cache_dir       Path of the cache dir ($DOCKER_REGISTRY_TEST_CACHE,
                          default /var/tmp/docker-registry-test-cache); reused
                          across runs (the registry image archive, corpora).
  registry_image_archive  Path of registry-image.tar: `registry:2` built by
                          scripts/build-registry-image.sh and `docker save`d
                          (rebuilt only when the binary changes).
  registry3_image_archive Same for the 3.x-layout variant `registry:3`.
  small_corpus            images.Corpus: the standard corpus,
                          $DOCKER_REGISTRY_TEST_CORPUS_MB MiB (default 4).
  corpus_factory          corpus_factory(total_mb) -> cached images.Corpus
                          (e.g. 512 for benchmarks).
  upstream_registry       upstream.UpstreamRegistry on 127.0.0.1:<free port>
                          ($UPSTREAM_REGISTRY_HOST to change the address), no
                          auth, plain HTTP, with small_corpus pushed. Extra
                          attributes: .corpus (the Corpus) and .pushed
                          ({ref: digest}). Treat it as read-only (shared).
  test_ca                 ca.TestCA in a session temp dir.
Function fixtures
  upstream_factory        upstream_factory(**UpstreamRegistry kwargs) -> started
                          registry, stopped and removed at teardown; pass
                          corpus=<Corpus> to push it (e.g. auth/TLS variants).
"""

import os
from pathlib import Path

import pytest

from . import ca as _ca
from . import containers, images
from .charm_build import built_charm
from .upstream import UpstreamRegistry

CACHE_ENV = "DOCKER_REGISTRY_TEST_CACHE"
DEFAULT_CACHE = "/var/tmp/docker-registry-test-cache"


def cache_dir():
    p = Path(os.environ.get(CACHE_ENV, DEFAULT_CACHE))
    p.mkdir(parents=True, exist_ok=True)
    return p


def corpus(total_mb, base_dir=None, **kw):
    """The standard corpus of total_mb MiB, built once under the cache dir."""
    base = Path(base_dir or cache_dir())
    name = "corpus-%gmb" % total_mb
    with containers.file_lock(base / (".%s.lock" % name)):
        return images.standard_set(total_mb, base / name, **kw)


@pytest.fixture(scope="session")
def charm_path():
    return built_charm()


@pytest.fixture(scope="session")
def support_cache_dir():
    return cache_dir()


@pytest.fixture(scope="session")
def registry_image_archive(support_cache_dir):
    if not containers.docker_available():
        pytest.skip("docker engine not available")
    return containers.build_registry_image(
        "registry:2", support_cache_dir / "registry-image.tar")


@pytest.fixture(scope="session")
def registry3_image_archive(support_cache_dir):
    if not containers.docker_available():
        pytest.skip("docker engine not available")
    return containers.build_registry_image(
        "registry:3", support_cache_dir / "registry3-image.tar", distribution3=True)


@pytest.fixture(scope="session")
def small_corpus(support_cache_dir):
    return corpus(float(os.environ.get("DOCKER_REGISTRY_TEST_CORPUS_MB", "4")),
                  support_cache_dir)


@pytest.fixture(scope="session")
def corpus_factory(support_cache_dir):
    def make(total_mb, **kw):
        return corpus(total_mb, support_cache_dir, **kw)
    return make


@pytest.fixture(scope="session")
def upstream_registry(small_corpus, tmp_path_factory):
    reg = UpstreamRegistry(host=os.environ.get("UPSTREAM_REGISTRY_HOST", "127.0.0.1"),
                           workdir=tmp_path_factory.mktemp("upstream-registry"))
    reg.start()
    try:
        reg.corpus = small_corpus
        reg.pushed = reg.push_corpus(small_corpus)
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory):
    return _ca.TestCA(tmp_path_factory.mktemp("test-ca"))


@pytest.fixture
def upstream_factory(tmp_path):
    started = []

    def make(corpus=None, cert_dir=None, **kw):
        kw.setdefault("workdir", tmp_path / ("upstream-%d" % len(started)))
        reg = UpstreamRegistry(**kw)
        started.append(reg)
        reg.start()
        if corpus is not None:
            reg.corpus = corpus
            reg.pushed = reg.push_corpus(corpus, cert_dir=cert_dir)
        return reg

    yield make
    for reg in started:
        reg.stop()
