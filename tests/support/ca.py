"""A throw-away test CA and certificates made with the openssl CLI.

    ca = TestCA(tmp_path / "ca")                       # ca.cert, ca.key
    srv = ca.server_cert("registry", ["127.0.0.11", "localhost"])
    cli = ca.client_cert("client")
    d = ca.cert_dir(tmp_path / "certs.d", client=cli)  # ca.crt, client.cert, client.key

SANs given as IP addresses become ``IP:`` entries, others ``DNS:`` entries
(Go ignores the CN, so every name a client uses must be a SAN).
"""

import ipaddress
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

OPENSSL = os.environ.get("OPENSSL", "openssl")


def _run(args, cwd=None):
    proc = subprocess.run([OPENSSL] + list(args), capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (args[0], proc.stderr.strip()))
    return proc.stdout


def san_string(names):
    out = []
    for n in names:
        try:
            ipaddress.ip_address(n)
            out.append("IP:%s" % n)
        except ValueError:
            out.append("DNS:%s" % n)
    return ",".join(out)


@dataclass
class CertPair:
    cert: Path
    key: Path
    ca: Optional[Path] = None

    @property
    def cert_pem(self):
        return self.cert.read_text()

    @property
    def key_pem(self):
        return self.key.read_text()

    @property
    def ca_pem(self):
        return self.ca.read_text() if self.ca else None

    def chain(self, path=None):
        """Write cert + CA into one file (a full chain) and return its path."""
        path = Path(path or self.cert.with_suffix(".chain.pem"))
        path.write_text(self.cert_pem + (self.ca_pem or ""))
        return path


def _new_key(path, key_type):
    if key_type == "rsa":
        _run(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
              "-out", str(path)])
    elif key_type == "ec":
        _run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-out", str(path)])
    else:
        raise ValueError(key_type)
    os.chmod(path, 0o600)


class TestCA:
    """A self-signed CA living in ``directory`` (created, or reused if present)."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory, cn="Docker Registry Test CA", days=30, key_type="rsa"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.days = days
        self.key_type = key_type
        self.cert = self.dir / "ca.crt"
        self.key = self.dir / "ca.key"
        if not (self.cert.exists() and self.key.exists()):
            _new_key(self.key, key_type)
            ext = self.dir / "ca.ext"
            ext.write_text(
                "[req]\ndistinguished_name=dn\n[dn]\n"
                "[v3_ca]\nbasicConstraints=critical,CA:TRUE\n"
                "keyUsage=critical,keyCertSign,cRLSign,digitalSignature\n"
                "subjectKeyIdentifier=hash\n")
            _run(["req", "-x509", "-new", "-key", str(self.key), "-sha256",
                  "-days", str(days), "-subj", "/CN=%s" % cn, "-config", str(ext),
                  "-extensions", "v3_ca", "-set_serial", str(secrets.randbits(63)),
                  "-out", str(self.cert)])

    @property
    def pem(self):
        return self.cert.read_text()

    def issue(self, name, cn=None, sans: Sequence[str] = (), usage="server",
              directory=None, days=None) -> CertPair:
        """Issue ``<name>.crt``/``<name>.key``; usage: server, client or both."""
        d = Path(directory or self.dir)
        d.mkdir(parents=True, exist_ok=True)
        key, csr, crt = d / ("%s.key" % name), d / ("%s.csr" % name), d / ("%s.crt" % name)
        ext = d / ("%s.ext" % name)
        _new_key(key, self.key_type)
        cn = cn or (sans[0] if sans else name)
        _run(["req", "-new", "-key", str(key), "-subj", "/CN=%s" % cn, "-out", str(csr)])
        eku = {"server": "serverAuth", "client": "clientAuth",
               "both": "serverAuth,clientAuth"}[usage]
        lines = ["basicConstraints=critical,CA:FALSE",
                 "keyUsage=critical,digitalSignature,keyEncipherment",
                 "extendedKeyUsage=%s" % eku,
                 "subjectKeyIdentifier=hash",
                 "authorityKeyIdentifier=keyid,issuer"]
        if sans:
            lines.append("subjectAltName=%s" % san_string(sans))
        ext.write_text("\n".join(lines) + "\n")
        _run(["x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
              "-set_serial", str(secrets.randbits(63)), "-sha256",
              "-days", str(days or self.days), "-extfile", str(ext), "-out", str(crt)])
        csr.unlink()
        ext.unlink()
        return CertPair(crt, key, self.cert)

    def server_cert(self, name="server", sans=("127.0.0.1", "localhost"), cn=None,
                    directory=None) -> CertPair:
        return self.issue(name, cn=cn, sans=list(sans), usage="server", directory=directory)

    def client_cert(self, name="client", cn=None, directory=None) -> CertPair:
        return self.issue(name, cn=cn or name, sans=(), usage="client", directory=directory)

    def cert_dir(self, path, client: Optional[CertPair] = None):
        """A docker ``certs.d/<host>``-style / skopeo ``--cert-dir`` directory:
        ``ca.crt`` plus ``client.cert``/``client.key`` when client is given."""
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.cert, p / "ca.crt")
        if client is not None:
            shutil.copyfile(client.cert, p / "client.cert")
            shutil.copyfile(client.key, p / "client.key")
        return p

    def verify(self, cert_path):
        """True when openssl verifies cert_path against this CA."""
        proc = subprocess.run([OPENSSL, "verify", "-CAfile", str(self.cert), str(cert_path)],
                              capture_output=True, text=True)
        return proc.returncode == 0


def make_ca(directory, cn="Docker Registry Test CA", **kw) -> TestCA:
    return TestCA(directory, cn=cn, **kw)


def make_server_cert(ca: TestCA, name="server", sans=("127.0.0.1", "localhost"),
                     directory=None) -> CertPair:
    return ca.server_cert(name, sans=sans, directory=directory)
