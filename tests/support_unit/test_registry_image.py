import json
import subprocess
import tarfile

import pytest

from tests.support import containers, images
from tests.support.upstream import free_port

pytestmark = pytest.mark.skipif(not containers.docker_available(), reason="no docker engine")


def _labels(tag):
    out = subprocess.run(["docker", "image", "inspect", tag, "--format",
                          "{{json .Config}}"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def test_archive_and_idempotence(registry_image_archive):
    with tarfile.open(registry_image_archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == ["registry:2"]
    before = containers.image_id("registry:2")
    mtime = registry_image_archive.stat().st_mtime
    proc = subprocess.run(["bash", str(containers.BUILD_SCRIPT), "registry:2",
                           str(registry_image_archive)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stderr and "already holds" in proc.stderr
    assert containers.image_id("registry:2") == before
    assert registry_image_archive.stat().st_mtime == mtime
    cfg = _labels("registry:2")
    assert cfg["Entrypoint"] == ["/bin/registry"]
    assert cfg["Cmd"] == ["serve", "/etc/docker/registry/config.yml"]
    assert "/var/lib/registry" in cfg["Volumes"]


def test_image_runs_with_host_network(registry_image_archive, upstream_registry, tmp_path):
    with containers.registry_container("registry:2") as (cid, url):
        assert containers.wait_http(url + "/v2/") == 200
        # push an image to it and read it back
        lay = tmp_path / "lay"
        img = images.build_image(lay, "c:1", [images.LayerSpec(8192, "container")])
        host = url.split("//", 1)[1]
        images.push(lay, "c:1", host + "/c:1")
        from tests.support.skopeo import registry_digest
        assert registry_digest(host + "/c:1") == img.digest
    # as a pull-through cache of the upstream stand-in (reached over 127.0.0.1)
    env = {"REGISTRY_PROXY_REMOTEURL": upstream_registry.url}
    with containers.registry_container("registry:2", env=env) as (cid, url):
        containers.wait_http(url + "/v2/")
        from tests.support.skopeo import registry_digest
        host = url.split("//", 1)[1]
        want = upstream_registry.corpus.entry("test/multiarch").digest
        assert registry_digest(host + "/test/multiarch:1.0") == want


def test_distribution3_layout(registry3_image_archive, tmp_path):
    cfg = _labels("registry:3")
    assert cfg["Cmd"] == ["serve", "/etc/distribution/config.yml"]
    port = free_port()
    conf = tmp_path / "config.yml"
    conf.write_text(json.dumps({
        "version": 0.1,
        "storage": {"filesystem": {"rootdirectory": "/var/lib/registry"}},
        "http": {"addr": "127.0.0.1:%d" % port}}))
    # no REGISTRY_HTTP_ADDR override: the address must come from the mounted file
    cmd = ["docker", "run", "-d", "--network", "host",
           "-v", "%s:/etc/distribution/config.yml:ro" % conf, "registry:3"]
    cid = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()
    try:
        assert containers.wait_http("http://127.0.0.1:%d/v2/" % port) == 200
        ls = subprocess.run(["docker", "run", "--rm", "--entrypoint", "/bin/registry",
                             "registry:3", "--version"], capture_output=True, text=True)
        assert "2.8" in ls.stdout
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", cid], capture_output=True)
