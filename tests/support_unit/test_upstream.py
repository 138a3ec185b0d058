import json
import subprocess

import pytest

from tests.support import images, skopeo
from tests.support.ca import TestCA
from tests.support.upstream import UpstreamRegistry, bcrypt_hash, port_open


@pytest.fixture(scope="module")
def tiny_layout(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    img = images.build_image(d, "tiny:1", [images.LayerSpec(4096, "tiny")])
    return d, img


def test_start_stop_restart_keeps_content(tmp_path, tiny_layout):
    layout, img = tiny_layout
    up = UpstreamRegistry(host="127.0.0.1", workdir=tmp_path)
    with up:
        assert up.request("GET", "/v2/")[0] == 200
        images.push(layout, "tiny:1", up.ref("x/tiny:1"))
        up.restart()
        assert up.digest("x/tiny:1") == img.digest
        assert up.delete_manifest("x/tiny", "1")
        assert up.manifest("x/tiny", img.digest) is None
        port = up.port
    assert not up.running and not port_open("127.0.0.1", port)


def test_bcrypt_hash_format():
    h = bcrypt_hash("pw")
    assert h.startswith("$2y$10$") and len(h) == 60


def test_basic_auth(tmp_path, tiny_layout):
    layout, img = tiny_layout
    with UpstreamRegistry(users={"alice": "s3cret"}, workdir=tmp_path) as up:
        assert up.request("GET", "/v2/", auth=False)[0] == 401
        assert up.request("GET", "/v2/")[0] == 200
        with pytest.raises(skopeo.SkopeoError):
            images.push(layout, "tiny:1", up.ref("tiny:1"), retries=0)
        with pytest.raises(skopeo.SkopeoError):
            images.push(layout, "tiny:1", up.ref("tiny:1"), creds="alice:wrong", retries=0)
        images.push(layout, "tiny:1", up.ref("tiny:1"), creds=up.creds)
        assert up.digest("tiny:1") == img.digest
        assert up.tags("tiny") == ["1"]


def test_tls_with_test_ca(tmp_path, tiny_layout):
    layout, img = tiny_layout
    ca = TestCA(tmp_path / "ca")
    srv = ca.server_cert("upstream", ["127.0.0.1", "localhost"])
    assert ca.verify(srv.cert)
    text = subprocess.run(["openssl", "x509", "-in", str(srv.cert), "-noout", "-text"],
                          capture_output=True, text=True).stdout
    assert "IP Address:127.0.0.1" in text and "DNS:localhost" in text
    cert_dir = ca.cert_dir(tmp_path / "certs.d")
    with UpstreamRegistry(tls=(srv.cert, srv.key), workdir=tmp_path / "r") as up:
        assert up.url.startswith("https://")
        images.push(layout, "tiny:1", up.ref("tiny:1"), cert_dir=cert_dir)
        assert skopeo.registry_digest(up.ref("tiny:1"), cert_dir=cert_dir) == img.digest
        # verification really happens: an unrelated CA is refused
        other = TestCA(tmp_path / "other").cert_dir(tmp_path / "other.d")
        with pytest.raises(skopeo.SkopeoError):
            skopeo.inspect_raw(up.ref("tiny:1"), cert_dir=other)
        out = subprocess.run(["curl", "-sf", "--cacert", str(ca.cert), up.url + "/v2/"],
                             capture_output=True, text=True)
        assert out.returncode == 0 and json.loads(out.stdout) == {}


def test_tls_client_certificates(tmp_path, tiny_layout):
    layout, img = tiny_layout
    ca = TestCA(tmp_path / "ca", key_type="ec")
    srv = ca.server_cert("upstream", ["127.0.0.1"])
    cli = ca.client_cert("client")
    with UpstreamRegistry(tls=(srv.cert, srv.key), client_ca=ca.cert,
                          workdir=tmp_path / "r") as up:
        no_client = ca.cert_dir(tmp_path / "plain")
        with pytest.raises(skopeo.SkopeoError):
            images.push(layout, "tiny:1", up.ref("tiny:1"), cert_dir=no_client, retries=0)
        with_client = ca.cert_dir(tmp_path / "mtls", client=cli)
        images.push(layout, "tiny:1", up.ref("tiny:1"), cert_dir=with_client)
        assert skopeo.registry_digest(up.ref("tiny:1"), cert_dir=with_client) == img.digest
    # with a client pair the object's own HTTP calls work too
    with UpstreamRegistry(tls=(srv.cert, srv.key), client_ca=ca.cert,
                          client_cert=(cli.cert, cli.key), workdir=tmp_path / "r2") as up:
        assert up.request("GET", "/v2/")[0] == 200


def test_fixed_address_and_factory(upstream_factory, small_corpus):
    up = upstream_factory(host="127.0.0.2", corpus=small_corpus)
    assert up.address.startswith("127.0.0.2:")
    assert up.digest("test/multiarch:1.0") == small_corpus.entry("test/multiarch").digest
