import gzip
import hashlib
import io
import json
import tarfile

import pytest

from tests.support import images, skopeo
from tests.support.upstream import UpstreamRegistry

pytestmark = pytest.mark.skipif(not skopeo.available(), reason="skopeo missing")


def test_layers_are_deterministic_and_valid(tmp_path):
    spec = images.LayerSpec(100_000, "det", files=3)
    a = images.Layout(tmp_path / "a")
    b = images.Layout(tmp_path / "b")
    blob_a, diff_a = a.add_layer(spec)
    blob_b, diff_b = b.add_layer(spec)
    assert blob_a.digest == blob_b.digest and diff_a == diff_b
    raw = a.read_blob(blob_a.digest)
    assert images._sha256(raw) == blob_a.digest and len(raw) == blob_a.size
    tar_bytes = gzip.decompress(raw)
    assert "sha256:" + hashlib.sha256(tar_bytes).hexdigest() == diff_a
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        files = [m for m in tar.getmembers() if m.isfile()]
        assert sum(m.size for m in files) == 100_000 and len(files) == 3
        assert all(m.mtime == 0 for m in tar.getmembers())
    # random content does not compress: blob size tracks the spec size
    assert 100_000 < blob_a.size < 110_000
    assert a.add_layer(images.LayerSpec(100_000, "other"))[0].digest != blob_a.digest


def test_image_and_index_documents(tmp_path):
    lay = tmp_path / "lay"
    img = images.build_image(lay, "x/img:1", [images.LayerSpec(2048, 1)], arch="arm64",
                             variant="v8")
    manifest = json.loads(images.Layout(lay).read_blob(img.digest))
    assert manifest["mediaType"] == images.OCI_MANIFEST
    config = json.loads(images.Layout(lay).read_blob(img.config.digest))
    assert (config["architecture"], config["os"], config["variant"]) == ("arm64", "linux", "v8")
    assert config["rootfs"]["diff_ids"] == img.diff_ids
    idx = images.build_index(lay, "x/multi:1", ["linux/amd64", "linux/arm64/v8", "linux/s390x"])
    doc = json.loads(images.Layout(lay).read_blob(idx.digest))
    assert [m["platform"]["architecture"] for m in doc["manifests"]] == ["amd64", "arm64", "s390x"]
    assert images.Layout(lay).tags() == {"x/img:1": img.digest, "x/multi:1": idx.digest}


def test_corpus_push_digests_platforms_and_dedup(upstream_registry):
    up, corpus = upstream_registry, upstream_registry.corpus
    # every tag is in the registry under the digest built locally
    for ref, digest in up.pushed.items():
        assert skopeo.registry_digest(ref) == digest, ref
    # the multi-arch index (OCI) and manifest list (Docker) keep both platforms
    for repo, mt in (("test/multiarch", images.OCI_INDEX),
                     ("test/multiarch-v2s2", images.DOCKER_LIST)):
        raw = json.loads(skopeo.inspect_raw(up.ref(repo + ":1.0")))
        assert raw["mediaType"] == mt
        plats = {(m["platform"]["architecture"], m["platform"].get("variant"))
                 for m in raw["manifests"]}
        assert plats == {("amd64", None), ("arm64", "v8")}
        for m in raw["manifests"]:   # per-platform manifests were copied too
            assert up.manifest(repo, m["digest"]) is not None
    assert up.tags("test/app-a") == ["1.0", "latest"]
    assert skopeo.list_tags(up.ref("test/app-a")) == ["1.0", "latest"]
    assert set(up.catalog()) == {e.repo for e in corpus.entries}
    # the shared base layer is referenced by several images but stored once
    base = corpus.shared_layers[0]
    users = [e.repo for e in corpus.entries if base in e.blobs]
    assert len(users) >= 5
    all_manifests = {d for e in corpus.entries for d in e.manifests}
    assert up.blob_count() == len(corpus.blob_digests) + len(all_manifests)
    layer_bytes = sum(images.Layout(corpus.layout_dir).blob_path(d).stat().st_size
                      for d in corpus.blob_digests)
    assert up.storage_bytes() < layer_bytes * 1.05
    assert 3.5 * 2**20 < corpus.blob_bytes < 5 * 2**20


def test_corpus_is_reused(small_corpus, tmp_path):
    again = images.standard_set(small_corpus.total_mb, small_corpus.layout_dir)
    assert [e.digest for e in again.entries] == [e.digest for e in small_corpus.entries]
    # a different layout with the same parameters yields the same digests
    fresh = images.standard_set(0.25, tmp_path / "c1", docker_formats=False)
    fresh2 = images.standard_set(0.25, tmp_path / "c2", docker_formats=False)
    assert [e.digest for e in fresh.entries] == [e.digest for e in fresh2.entries]


def test_images_for_refs(tmp_path):
    refs = ["rocks.canonical.com/cdk/addon-resizer-amd64:1.8.9",
            "rocks.canonical.com/cdk/calico/cni:v3.25.1",
            "rocks.canonical.com/cdk/pause:3.9"]
    built = images.images_for_refs(tmp_path / "lay", refs, multiarch={"cdk/pause"})
    assert [b[1] for b in built] == ["cdk/addon-resizer-amd64:1.8.9", "cdk/calico/cni:v3.25.1",
                                     "cdk/pause:3.9"]
    with UpstreamRegistry(workdir=tmp_path / "reg") as up:
        for _, tag, b in built:
            images.push(tmp_path / "lay", tag, up.ref(tag))
            assert up.digest(tag) == b.digest
        assert skopeo.platforms(up.ref("cdk/pause:3.9")) == ["linux/amd64", "linux/arm64/v8"]
