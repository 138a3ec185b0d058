"""Pure-Python construction of OCI image layouts for tests (no docker needed).

Everything is deterministic: a layer is a gzip-compressed tar whose files hold
pseudo-random bytes drawn from a seed, with fixed metadata (mtime 0, uid 0),
so the same ``LayerSpec`` always gives the same blob digest, in any layout.
Random content does not compress, so a layer's blob size is close to
``LayerSpec.size`` and a corpus's byte count is what it says.

Basic use::

    from tests.support import images
    img = images.build_image(d, "demo:1.0", layers=[images.LayerSpec(1 << 20, "a")])
    idx = images.build_index(d, "multi:1.0", platforms=["linux/amd64", "linux/arm64/v8"])
    images.push(d, "demo:1.0", "127.0.0.1:5000/demo:1.0")

    corpus = images.standard_set(4, "/var/tmp/corpus")     # ~4 MiB of blobs
    corpus.push("127.0.0.1:5000")                           # every image, every tag

Layout tags (``org.opencontainers.image.ref.name``) may be any ``name:tag``
string such as ``test/app-a:1.0``; ``push`` maps them to a destination ref.
``fmt="docker"`` builds Docker v2 schema 2 manifests / manifest lists instead
of OCI ones (skopeo copies them unchanged with ``--preserve-digests``).
"""

import gzip
import hashlib
import json
import os
import random
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from . import skopeo

# --- media types --------------------------------------------------------------

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

MEDIA_TYPES = {
    "oci": dict(manifest=OCI_MANIFEST, index=OCI_INDEX, config=OCI_CONFIG, layer=OCI_LAYER_GZIP),
    "docker": dict(manifest=DOCKER_MANIFEST, index=DOCKER_LIST, config=DOCKER_CONFIG,
                   layer=DOCKER_LAYER_GZIP),
}

REF_NAME = "org.opencontainers.image.ref.name"
_CHUNK = 1 << 20
CORPUS_VERSION = 1


def _canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- specs and results ------------------------------------------------------------


@dataclass(frozen=True)
class LayerSpec:
    """A layer of ``size`` bytes of seeded random file content in ``files`` files."""
    size: int
    seed: Union[int, str] = 0
    files: int = 1

    def key(self):
        return "v1:%d:%d:%r" % (self.size, self.files, self.seed)


@dataclass
class Blob:
    digest: str
    size: int
    media_type: str

    def descriptor(self, **extra):
        d = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        d.update(extra)
        return d


@dataclass
class BuiltImage:
    """One image manifest written into a layout."""
    layout_dir: Path
    tag: Optional[str]
    manifest: Blob
    config: Blob
    layers: List[Blob]
    diff_ids: List[str]
    platform: Dict[str, str]

    @property
    def digest(self):
        return self.manifest.digest

    @property
    def media_type(self):
        return self.manifest.media_type

    @property
    def platform_str(self):
        p = self.platform
        return "/".join(x for x in (p["os"], p["architecture"], p.get("variant")) if x)

    @property
    def blob_digests(self):
        """Config and layer digests (what a registry stores as blobs)."""
        return {self.config.digest} | {b.digest for b in self.layers}

    @property
    def all_digests(self):
        return self.blob_digests | {self.digest}


@dataclass
class BuiltIndex:
    """An OCI image index / Docker manifest list written into a layout."""
    layout_dir: Path
    tag: Optional[str]
    manifest: Blob
    images: List[BuiltImage]

    @property
    def digest(self):
        return self.manifest.digest

    @property
    def media_type(self):
        return self.manifest.media_type

    @property
    def platforms(self):
        return [i.platform_str for i in self.images]

    @property
    def layers(self):
        seen, out = set(), []
        for i in self.images:
            for b in i.layers:
                if b.digest not in seen:
                    seen.add(b.digest)
                    out.append(b)
        return out

    @property
    def blob_digests(self):
        s = set()
        for i in self.images:
            s |= i.blob_digests
        return s

    @property
    def all_digests(self):
        s = {self.digest}
        for i in self.images:
            s |= i.all_digests
        return s


def parse_platform(p):
    """'linux/arm64/v8' or 'arm64' -> {'os':..., 'architecture':..., ['variant':...]}"""
    if isinstance(p, dict):
        return dict(p)
    parts = p.split("/")
    if len(parts) == 1:
        parts = ["linux"] + parts
    d = {"os": parts[0], "architecture": parts[1]}
    if len(parts) > 2 and parts[2]:
        d["variant"] = parts[2]
    return d


# --- deterministic layer bytes ------------------------------------------------------


class _SeededReader:
    """File-like object yielding ``size`` pseudo-random bytes for ``seed``.

    Output depends only on (seed, size), never on the read sizes asked for.
    """

    def __init__(self, seed, size):
        self._rng = random.Random(seed)
        self._left = size
        self._buf = b""

    def read(self, n=-1):
        if n is None or n < 0:
            n = self._left + len(self._buf)
        while len(self._buf) < n and self._left > 0:
            k = min(_CHUNK, self._left)
            self._buf += self._rng.randbytes(k)
            self._left -= k
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


class _HashingWriter:
    def __init__(self, target):
        self.target = target
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.hash.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)

    def flush(self):
        self.target.flush()

    def digest(self):
        return "sha256:" + self.hash.hexdigest()


def write_layer(out_file, spec: LayerSpec, compresslevel=1):
    """Write the gzipped tar for spec into binary file out_file.

    Returns (compressed digest, compressed size, diff_id).
    """
    outer = _HashingWriter(out_file)
    gz = gzip.GzipFile(filename="", mode="wb", fileobj=outer, mtime=0,
                       compresslevel=compresslevel)
    inner = _HashingWriter(gz)
    tag = hashlib.sha256(repr(spec.seed).encode()).hexdigest()[:12]
    with tarfile.open(fileobj=inner, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
        d = tarfile.TarInfo("data-%s" % tag)
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 0
        tar.addfile(d)
        nfiles = max(1, spec.files)
        base, extra = divmod(max(0, spec.size), nfiles)
        for i in range(nfiles):
            size = base + (1 if i < extra else 0)
            ti = tarfile.TarInfo("data-%s/file-%04d.bin" % (tag, i))
            ti.size, ti.mode, ti.mtime = size, 0o644, 0
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            tar.addfile(ti, _SeededReader("%r:%d" % (spec.seed, i), size))
    gz.close()
    return outer.digest(), outer.size, inner.digest()


# --- the layout ---------------------------------------------------------------------


class Layout:
    """An OCI image layout directory (created on first use)."""

    LAYER_CACHE = ".layer-cache.json"

    def __init__(self, path):
        self.path = Path(path)
        self.blobs = self.path / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        marker = self.path / "oci-layout"
        if not marker.exists():
            marker.write_text('{"imageLayoutVersion":"1.0.0"}')
        if not (self.path / "index.json").exists():
            self._write_index({"schemaVersion": 2, "manifests": []})
        self._layer_cache = None

    # blobs
    def blob_path(self, digest):
        return self.blobs / digest.split(":", 1)[1]

    def has_blob(self, digest):
        return self.blob_path(digest).exists()

    def read_blob(self, digest):
        return self.blob_path(digest).read_bytes()

    def add_blob(self, data: bytes, media_type) -> Blob:
        digest = _sha256(data)
        p = self.blob_path(digest)
        if not p.exists():
            tmp = p.with_name(p.name + ".tmp%d" % os.getpid())
            tmp.write_bytes(data)
            os.replace(tmp, p)
        return Blob(digest, len(data), media_type)

    def add_json(self, obj, media_type) -> Blob:
        return self.add_blob(_canonical(obj), media_type)

    def _cache(self):
        if self._layer_cache is None:
            try:
                self._layer_cache = json.loads((self.path / self.LAYER_CACHE).read_text())
            except (OSError, ValueError):
                self._layer_cache = {}
        return self._layer_cache

    def add_layer(self, spec: LayerSpec, media_type=OCI_LAYER_GZIP, compresslevel=1):
        """Write spec's layer blob (once per layout); returns (Blob, diff_id)."""
        key = "%s:z%d" % (spec.key(), compresslevel)
        hit = self._cache().get(key)
        if hit and self.has_blob(hit["digest"]):
            return Blob(hit["digest"], hit["size"], media_type), hit["diff_id"]
        fd, tmp = tempfile.mkstemp(dir=self.blobs, prefix=".layer-")
        try:
            with os.fdopen(fd, "wb") as f:
                digest, size, diff_id = write_layer(f, spec, compresslevel)
            os.replace(tmp, self.blob_path(digest))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self._cache()[key] = {"digest": digest, "size": size, "diff_id": diff_id}
        cache_tmp = self.path / (self.LAYER_CACHE + ".tmp")
        cache_tmp.write_text(json.dumps(self._cache(), indent=1, sort_keys=True))
        os.replace(cache_tmp, self.path / self.LAYER_CACHE)
        return Blob(digest, size, media_type), diff_id

    # index.json
    def _read_index(self):
        return json.loads((self.path / "index.json").read_text())

    def _write_index(self, idx):
        tmp = self.path / "index.json.tmp"
        tmp.write_bytes(json.dumps(idx, indent=1).encode())
        os.replace(tmp, self.path / "index.json")

    def tag(self, tag, blob: Blob, platform=None):
        """Point ref name ``tag`` at blob in index.json (replacing any old entry)."""
        idx = self._read_index()
        idx["manifests"] = [m for m in idx["manifests"]
                            if (m.get("annotations") or {}).get(REF_NAME) != tag]
        extra = {"annotations": {REF_NAME: tag}}
        if platform:
            extra["platform"] = platform
        idx["manifests"].append(blob.descriptor(**extra))
        self._write_index(idx)

    def tags(self):
        return {(m.get("annotations") or {}).get(REF_NAME): m["digest"]
                for m in self._read_index()["manifests"]
                if (m.get("annotations") or {}).get(REF_NAME)}

    def resolve(self, tag):
        return self.tags()[tag]

    def descriptor(self, tag):
        for m in self._read_index()["manifests"]:
            if (m.get("annotations") or {}).get(REF_NAME) == tag:
                return m
        return None

    def export_dir(self, tag, target):
        """Write tag's image (all platforms) as a skopeo ``dir:`` directory."""
        target = Path(target)
        target.mkdir(parents=True, exist_ok=True)
        desc = self.descriptor(tag)
        if desc is None:
            raise KeyError(tag)

        def link(digest):
            dst = target / digest.split(":", 1)[1]
            if not dst.exists():
                try:
                    os.link(self.blob_path(digest), dst)
                except OSError:
                    dst.write_bytes(self.read_blob(digest))

        def image(manifest):
            link(manifest["config"]["digest"])
            for layer in manifest["layers"]:
                link(layer["digest"])

        top = self.read_blob(desc["digest"])
        (target / "manifest.json").write_bytes(top)
        doc = json.loads(top)
        if "manifests" in doc:
            for m in doc["manifests"]:
                raw = self.read_blob(m["digest"])
                (target / (m["digest"].split(":", 1)[1] + ".manifest.json")).write_bytes(raw)
                image(json.loads(raw))
        else:
            image(doc)
        (target / "version").write_text("Directory Transport Version: 1.1\n")
        return target

    def total_blob_bytes(self):
        return sum(p.stat().st_size for p in self.blobs.iterdir() if not p.name.startswith("."))


def _layout(layout_dir):
    return layout_dir if isinstance(layout_dir, Layout) else Layout(layout_dir)


def build_image(layout_dir, tag: Optional[str], layers: Sequence[LayerSpec] = (),
                arch="amd64", os_name="linux", variant=None, fmt="oci",
                labels=None, cmd=("/bin/true",), compresslevel=1) -> BuiltImage:
    """Write an image (layers, config, manifest) into the layout.

    ``tag`` (e.g. ``"test/app:1.0"``) names it in index.json; ``None`` writes
    the blobs only (as for the per-platform images of an index).
    ``arch`` may also be a platform string such as ``"linux/arm64/v8"``.
    """
    lay = _layout(layout_dir)
    mt = MEDIA_TYPES[fmt]
    platform = parse_platform(arch) if "/" in arch else {"os": os_name, "architecture": arch}
    if variant:
        platform["variant"] = variant
    blobs, diff_ids = [], []
    for spec in layers:
        b, diff_id = lay.add_layer(spec, mt["layer"], compresslevel)
        blobs.append(b)
        diff_ids.append(diff_id)
    config = {
        "architecture": platform["architecture"],
        "os": platform["os"],
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": list(cmd),
            "Labels": dict(labels or {}),
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "1970-01-01T00:00:00Z",
                     "created_by": "test layer %s" % s.key()} for s in layers],
    }
    if "variant" in platform:
        config["variant"] = platform["variant"]
    config_blob = lay.add_json(config, mt["config"])
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt["manifest"],
        "config": config_blob.descriptor(),
        "layers": [b.descriptor() for b in blobs],
    }
    manifest_blob = lay.add_json(manifest, mt["manifest"])
    if tag:
        lay.tag(tag, manifest_blob)
    return BuiltImage(lay.path, tag, manifest_blob, config_blob, blobs, diff_ids, platform)


def build_index(layout_dir, tag: Optional[str],
                platforms: Sequence = ("linux/amd64", "linux/arm64/v8"),
                layers: Optional[Dict[str, Sequence[LayerSpec]]] = None,
                shared_layers: Sequence[LayerSpec] = (), layer_size=64 * 1024,
                fmt="oci", labels=None, compresslevel=1) -> BuiltIndex:
    """Write a multi-platform index (OCI) / manifest list (``fmt="docker"``).

    Each platform's image gets ``shared_layers`` followed by
    ``layers[platform]`` (platform as given in ``platforms``), or by default one
    platform-specific layer of ``layer_size`` bytes seeded by tag and platform.
    """
    lay = _layout(layout_dir)
    mt = MEDIA_TYPES[fmt]
    images = []
    for p in platforms:
        plat = parse_platform(p)
        key = p if isinstance(p, str) else "/".join(
            x for x in (plat["os"], plat["architecture"], plat.get("variant")) if x)
        own = (layers or {}).get(key)
        if own is None:
            own = [LayerSpec(layer_size, "index:%s:%s" % (tag, key))]
        img = build_image(lay, None, list(shared_layers) + list(own),
                          arch=plat["architecture"], os_name=plat["os"],
                          variant=plat.get("variant"), fmt=fmt, labels=labels,
                          compresslevel=compresslevel)
        images.append(img)
    index = {
        "schemaVersion": 2,
        "mediaType": mt["index"],
        "manifests": [i.manifest.descriptor(platform=i.platform) for i in images],
    }
    blob = lay.add_json(index, mt["index"])
    if tag:
        lay.tag(tag, blob)
    return BuiltIndex(lay.path, tag, blob, images)


def push(layout, tag, dest_ref, creds=None, cert_dir=None, tls_verify=None,
         all=True, format=None, preserve_digests=True, retries=2):
    """``skopeo copy --all oci:<layout>:<tag> docker://<dest_ref>``.

    layout: a directory, a Layout, or a BuiltImage/BuiltIndex (then tag may be None).
    creds: ``"user:pass"`` or ``(user, pass)``. TLS: see tests.support.skopeo.
    """
    if isinstance(layout, (BuiltImage, BuiltIndex)):
        tag = tag or layout.tag
        layout = layout.layout_dir
    lay = _layout(layout)
    kw = dict(all=all, dest_creds=creds, dest_cert_dir=cert_dir, dest_tls_verify=tls_verify,
              format=format, preserve_digests=preserve_digests, retries=retries)
    desc = lay.descriptor(tag)
    if desc is not None and desc["mediaType"] in (DOCKER_MANIFEST, DOCKER_LIST):
        # skopeo's oci: transport only resolves OCI-typed index.json entries:
        # go through a dir: transport copy of the image instead.
        with tempfile.TemporaryDirectory(prefix=".dir-", dir=lay.path) as d:
            lay.export_dir(tag, d)
            return skopeo.copy("dir:%s" % d, dest_ref, **kw)
    return skopeo.copy("oci:%s:%s" % (lay.path, tag), dest_ref, **kw)


# --- the standard corpus ------------------------------------------------------------


@dataclass
class CorpusEntry:
    repo: str                   # e.g. "test/app-a"
    tags: List[str]             # e.g. ["1.0", "latest"]
    layout_tag: str             # ref name inside the layout
    kind: str                   # "image" or "index"
    digest: str
    media_type: str
    platforms: List[str]
    blobs: List[str]            # config + layer digests (all platforms)
    manifests: List[str]        # the manifest digests (index + per-platform)

    def refs(self, registry, prefix=""):
        return ["%s/%s%s:%s" % (registry, prefix, self.repo, t) for t in self.tags]


@dataclass
class Corpus:
    layout_dir: Path
    entries: List[CorpusEntry]
    total_mb: float
    shared_layers: List[str] = field(default_factory=list)

    @property
    def blob_digests(self):
        s = set()
        for e in self.entries:
            s |= set(e.blobs)
        return s

    @property
    def blob_bytes(self):
        """Bytes of all distinct blobs (configs + layers) of the corpus."""
        lay = Layout(self.layout_dir)
        return sum(lay.blob_path(d).stat().st_size for d in self.blob_digests)

    def entry(self, repo):
        for e in self.entries:
            if e.repo == repo:
                return e
        raise KeyError(repo)

    def indexes(self):
        return [e for e in self.entries if e.kind == "index"]

    def refs(self, registry, prefix=""):
        """Every ``registry/prefix+repo:tag`` reference of the corpus."""
        return [r for e in self.entries for r in e.refs(registry, prefix)]

    def expected_digests(self, registry, prefix=""):
        return {r: e.digest for e in self.entries for r in e.refs(registry, prefix)}

    def push(self, registry, prefix="", creds=None, cert_dir=None, tls_verify=None):
        """Push every image and tag to ``registry`` (``host:port``); returns ref -> digest."""
        out = {}
        for e in self.entries:
            for ref in e.refs(registry, prefix):
                push(self.layout_dir, e.layout_tag, ref, creds=creds, cert_dir=cert_dir,
                     tls_verify=tls_verify)
                out[ref] = e.digest
        return out

    def to_json(self):
        return {"version": CORPUS_VERSION, "total_mb": self.total_mb,
                "shared_layers": self.shared_layers,
                "entries": [e.__dict__ for e in self.entries]}

    @classmethod
    def from_json(cls, layout_dir, data):
        return cls(Path(layout_dir), [CorpusEntry(**e) for e in data["entries"]],
                   data["total_mb"], data.get("shared_layers", []))


def _entry(repo, tags, built, kind):
    if kind == "index":
        manifests = [built.digest] + [i.digest for i in built.images]
        plats = built.platforms
    else:
        manifests = [built.digest]
        plats = [built.platform_str]
    return CorpusEntry(repo, list(tags), built.tag, kind, built.digest, built.media_type,
                       plats, sorted(built.blob_digests), manifests)


def standard_set(total_mb=4, layout_dir=None, extra_platforms=(), docker_formats=True,
                 compresslevel=1) -> Corpus:
    """Build (or reuse) the standard test corpus in layout_dir.

    About ``total_mb`` MiB of distinct layer bytes, spread over (names relative
    to the registry, all tags listed):
      test/base:1.0                        1 layer   (the shared "base" layer, 20%)
      test/app-a:1.0, :latest              base + 2 own layers (15% + 10%)
      test/app-b:1.0                       base + 1 own layer (15%)
      test/many-layers:1.0                 8 own layers (8 x 2.5%)
      test/multiarch:1.0                   OCI index: linux/amd64 (base + 10%),
                                           linux/arm64/v8 (own 10%) [+ extra_platforms]
      test/legacy-v2s2:1.0                 Docker v2s2 image: base + app-a's first layer
      test/multiarch-v2s2:1.0              Docker manifest list, same layers as multiarch
    (the last two only with docker_formats). The base layer is shared by base,
    app-a, app-b, multiarch/amd64 and the v2s2 images.

    layout_dir defaults to a fresh temp dir; a layout already holding the same
    corpus (same parameters) is reused without rebuilding.
    """
    if layout_dir is None:
        layout_dir = tempfile.mkdtemp(prefix="corpus-%smb-" % total_mb)
    layout_dir = Path(layout_dir)
    signature = {"version": CORPUS_VERSION, "total_mb": total_mb,
                 "extra_platforms": list(extra_platforms), "docker_formats": docker_formats,
                 "compresslevel": compresslevel}
    meta = layout_dir / "corpus.json"
    if meta.exists():
        try:
            data = json.loads(meta.read_text())
            if data.get("signature") == signature:
                corpus = Corpus.from_json(layout_dir, data)
                lay = Layout(layout_dir)
                if all(lay.has_blob(d) for e in corpus.entries
                       for d in e.blobs + e.manifests):
                    return corpus
        except (ValueError, KeyError, TypeError):
            pass

    lay = Layout(layout_dir)
    total = int(total_mb * 1024 * 1024)

    def spec(name, fraction):
        return LayerSpec(max(1024, int(total * fraction)), "corpus:%s" % name)

    base = spec("base", 0.20)
    a1, a2 = spec("app-a/1", 0.15), spec("app-a/2", 0.10)
    b1 = spec("app-b/1", 0.15)
    many = [spec("many/%d" % i, 0.025) for i in range(8)]
    m_amd, m_arm = spec("multi/amd64", 0.10), spec("multi/arm64", 0.10)
    plats = ["linux/amd64", "linux/arm64/v8"] + list(extra_platforms)
    per_plat = {"linux/amd64": [base, m_amd], "linux/arm64/v8": [m_arm]}
    for p in extra_platforms:
        per_plat[p] = [spec("multi/%s" % p, 0.01)]
    kw = dict(compresslevel=compresslevel)

    entries = []
    img = build_image(lay, "test/base:1.0", [base], labels={"corpus": "base"}, **kw)
    entries.append(_entry("test/base", ["1.0"], img, "image"))
    img = build_image(lay, "test/app-a:1.0", [base, a1, a2], labels={"corpus": "app-a"}, **kw)
    entries.append(_entry("test/app-a", ["1.0", "latest"], img, "image"))
    img = build_image(lay, "test/app-b:1.0", [base, b1], labels={"corpus": "app-b"}, **kw)
    entries.append(_entry("test/app-b", ["1.0"], img, "image"))
    img = build_image(lay, "test/many-layers:1.0", many, labels={"corpus": "many"}, **kw)
    entries.append(_entry("test/many-layers", ["1.0"], img, "image"))
    idx = build_index(lay, "test/multiarch:1.0", plats, layers=per_plat,
                      labels={"corpus": "multiarch"}, **kw)
    entries.append(_entry("test/multiarch", ["1.0"], idx, "index"))
    if docker_formats:
        img = build_image(lay, "test/legacy-v2s2:1.0", [base, a1], fmt="docker",
                          labels={"corpus": "legacy"}, **kw)
        entries.append(_entry("test/legacy-v2s2", ["1.0"], img, "image"))
        idx = build_index(lay, "test/multiarch-v2s2:1.0", plats, layers=per_plat,
                          fmt="docker", labels={"corpus": "multiarch-v2s2"}, **kw)
        entries.append(_entry("test/multiarch-v2s2", ["1.0"], idx, "index"))

    base_digest = lay.add_layer(base, OCI_LAYER_GZIP, compresslevel)[0].digest
    corpus = Corpus(layout_dir, entries, total_mb, [base_digest])
    data = corpus.to_json()
    data["signature"] = signature
    tmp = layout_dir / "corpus.json.tmp"
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, meta)
    return corpus


def images_for_refs(layout_dir, refs, layer_size=2048, multiarch=()):
    """Tiny images named after full references, e.g. a Charmed Kubernetes list.

    For each ``host/path:tag`` (or ``host/path@sha256:..`` is rejected) builds
    a small single-layer image tagged ``path:tag`` in the layout; all share one
    base layer. Paths listed in ``multiarch`` become amd64+arm64 indexes.
    Returns ``[(original_ref, layout_tag, built)]``; push each with
    ``push(layout_dir, layout_tag, "<registry>/" + layout_tag)``.
    """
    lay = _layout(layout_dir)
    base = LayerSpec(layer_size, "refs:base")
    out = []
    for ref in refs:
        if "@" in ref:
            raise ValueError("digest references are not supported: %s" % ref)
        first, _, rest = ref.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            path = rest
        else:
            path = ref
        if ":" not in path.rsplit("/", 1)[-1]:
            path += ":latest"
        repo = path.rsplit(":", 1)[0]
        own = LayerSpec(512, "refs:%s" % path)
        if repo in multiarch:
            built = build_index(lay, path, shared_layers=[base], layer_size=512)
        else:
            built = build_image(lay, path, [base, own])
        out.append((ref, path, built))
    return out
