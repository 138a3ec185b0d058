"""A stand-in upstream registry: Debian's docker-registry binary as a subprocess.

    with UpstreamRegistry(users={"alice": "secret"}) as up:     # 127.0.0.1:<free port>
        corpus.push(up.address, creds=up.creds)
        up.digest("test/app-a:1.0")

Runs ``/usr/bin/docker-registry serve <config>`` (no container) with
filesystem storage in a temp dir and deletes enabled; optional htpasswd basic
auth (bcrypt), TLS (``tls=(cert, key)``, optional ``client_ca`` to require
client certificates), pull-through ``proxy`` mode, and arbitrary
``extra_config`` merged into the generated config.
"""

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import skopeo
from .skopeo import inspect_raw, list_tags, platforms, registry_digest  # noqa: F401 (re-export)

REGISTRY_BINARY = os.environ.get("REGISTRY_BINARY", "/usr/bin/docker-registry")

MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def free_port(host="127.0.0.1"):
    """A TCP port currently free on host."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(host, port, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --- htpasswd ------------------------------------------------------------------------

_VENV_CANDIDATES = [os.environ.get("LOCALJUJU_VENV", "/opt/docker-registry-venv"),
                    "/tmp/probe-venv"]


def bcrypt_hash(password, rounds=10):
    """A ``$2y$`` bcrypt hash of password, as the registry's htpasswd wants.

    Uses the bcrypt module, else passlib, else a venv's python that has one
    (LOCALJUJU_VENV, /tmp/probe-venv), since system python may lack both.
    """
    pw = password.encode() if isinstance(password, str) else password
    try:
        import bcrypt
        h = bcrypt.hashpw(pw, bcrypt.gensalt(rounds)).decode()
        return "$2y$" + h[4:]
    except ImportError:
        pass
    try:
        from passlib.hash import bcrypt as pl_bcrypt
        return pl_bcrypt.using(ident="2y", rounds=rounds).hash(pw)
    except ImportError:
        pass
    code = ("import sys,bcrypt;h=bcrypt.hashpw(sys.stdin.buffer.read(),bcrypt.gensalt(%d))"
            ".decode();print('$2y$'+h[4:])" % rounds)
    for venv in _VENV_CANDIDATES:
        py = Path(venv) / "bin" / "python3"
        if py.exists() and Path(py).resolve() != Path(sys.executable).resolve():
            proc = subprocess.run([str(py), "-c", code], input=pw, capture_output=True)
            if proc.returncode == 0:
                return proc.stdout.decode().strip()
    raise RuntimeError("no bcrypt implementation found (pip install bcrypt==4.0.1)")


def write_htpasswd(path, users):
    """Write an htpasswd file for {user: password}."""
    lines = ["%s:%s" % (u, bcrypt_hash(p)) for u, p in users.items()]
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def _merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = v
    return dst


# --- the registry ---------------------------------------------------------------------


class RegistryStartError(RuntimeError):
    pass


class UpstreamRegistry:
    """docker-registry subprocess on ``host:port`` (port chosen when None)."""

    def __init__(self, host="127.0.0.1", port=None, users=None, tls=None, client_ca=None,
                 storage_dir=None, workdir=None, delete=True, proxy=None,
                 extra_config=None, log_level="info", binary=REGISTRY_BINARY,
                 start_timeout=20, client_cert=None):
        """
        users:       {user: password} -> htpasswd basic auth.
        tls:         (cert_path, key_path) -> serve HTTPS.
        client_ca:   CA cert path(s) -> require client certificates (http.tls.clientcas).
        client_cert: (cert, key) this object presents in its own HTTP requests
                     (readiness only checks the TCP port when client_ca is set
                     and no client_cert is given).
        storage_dir: blob storage root (default: <workdir>/data). Kept across
                     restarts, so stop()/start() keeps the content.
        proxy:       {"remoteurl": ..., "username": ..., "password": ...} pull-through cache.
        extra_config: dict deep-merged into the generated config.
        """
        self.host = host
        self._fixed_port = port
        self.port = port
        self.users = dict(users or {})
        self.tls = tuple(tls) if tls else None
        self.client_ca = ([client_ca] if isinstance(client_ca, (str, Path)) else
                          list(client_ca or []))
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="upstream-registry-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage_dir = Path(storage_dir or self.workdir / "data")
        self.delete = delete
        self.proxy = proxy
        self.extra_config = extra_config or {}
        self.log_level = log_level
        self.binary = binary
        self.start_timeout = start_timeout
        self.proc = None
        self.client_cert = tuple(client_cert) if client_cert else None
        self.log_path = self.workdir / "registry.log"
        self.config_path = self.workdir / "config.yml"

    # -- addresses
    @property
    def address(self):
        """``host:port`` (what goes in image references)."""
        return "%s:%s" % (self.host, self.port)

    @property
    def scheme(self):
        return "https" if self.tls else "http"

    @property
    def url(self):
        return "%s://%s" % (self.scheme, self.address)

    @property
    def creds(self):
        """``"user:password"`` of the first user, or None without auth."""
        if not self.users:
            return None
        u, p = next(iter(self.users.items()))
        return "%s:%s" % (u, p)

    def ref(self, name):
        """``host:port/<name>`` for ``name`` like ``test/app:1.0``."""
        return "%s/%s" % (self.address, name)

    # -- config
    def config(self):
        cfg = {
            "version": 0.1,
            "log": {"level": self.log_level, "accesslog": {"disabled": False},
                    "fields": {"service": "upstream-registry"}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage_dir)},
                "delete": {"enabled": bool(self.delete)},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.address, "secret": "upstream-test-secret",
                     "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }
        if self.users:
            htpasswd = write_htpasswd(self.workdir / "htpasswd", self.users)
            cfg["auth"] = {"htpasswd": {"realm": "upstream-realm", "path": str(htpasswd)}}
        if self.tls:
            cfg["http"]["tls"] = {"certificate": str(self.tls[0]), "key": str(self.tls[1])}
            if self.client_ca:
                cfg["http"]["tls"]["clientcas"] = [str(c) for c in self.client_ca]
        if self.proxy:
            cfg["proxy"] = dict(self.proxy)
        return _merge(cfg, json.loads(json.dumps(self.extra_config)))

    # -- lifecycle
    def start(self):
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self._fixed_port else 3
        for attempt in range(attempts):
            if not self._fixed_port:
                self.port = free_port(self.host)
            # JSON is YAML: no PyYAML needed
            self.config_path.write_text(json.dumps(self.config(), indent=2))
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen([self.binary, "serve", str(self.config_path)],
                                         stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
            log.close()
            try:
                self.wait_ready(self.start_timeout)
                return self
            except RegistryStartError as e:
                self._kill()
                if attempt == attempts - 1 or "address already in use" not in str(e):
                    raise
        return self

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RegistryStartError("registry exited with %s:\n%s" % (
                    self.proc.returncode, self.logs()[-3000:]))
            if self.client_ca and not self.client_cert:
                if port_open(self.host, self.port):
                    return
                time.sleep(0.1)
                continue
            try:
                status, _, _ = self.request("GET", "/v2/", auth=False, timeout=2)
                if status in (200, 401):
                    return
                last = "status %s" % status
            except (OSError, urllib.error.URLError, ssl.SSLError) as e:
                last = e
            time.sleep(0.1)
        raise RegistryStartError("registry on %s not ready after %ss (%s):\n%s" % (
            self.address, timeout, last, self.logs()[-3000:]))

    def _kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def stop(self, cleanup=False):
        """Terminate the registry; cleanup=True also removes its own workdir."""
        self._kill()
        if cleanup and self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def restart(self):
        self._kill()
        return self.start()

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop(cleanup=True)

    def logs(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # -- HTTP API
    def _ssl_context(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def request(self, method, path, headers=None, data=None, auth=True, timeout=30,
                client_cert=None):
        """Raw HTTP request to the registry; returns (status, headers, body bytes)."""
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers=dict(headers or {}))
        if auth and self.users:
            u, p = next(iter(self.users.items()))
            req.add_header("Authorization", "Basic " + base64.b64encode(
                ("%s:%s" % (u, p)).encode()).decode())
        ctx = None
        if self.tls:
            ctx = self._ssl_context()
            client_cert = client_cert or self.client_cert
            if client_cert:
                ctx.load_cert_chain(*[str(c) for c in client_cert])
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def catalog(self):
        """All repository names (follows the Link pagination, 1000 a page)."""
        repos, path = [], "/v2/_catalog?n=1000"
        while path:
            status, headers, body = self.request("GET", path)
            if status != 200:
                raise RuntimeError("catalog: HTTP %s %s" % (status, body[:200]))
            repos += json.loads(body).get("repositories") or []
            link = headers.get("Link") or ""
            path = link.split(";")[0].strip().strip("<>") if 'rel="next"' in link else None
        return sorted(repos)

    def tags(self, repo):
        status, _, body = self.request("GET", "/v2/%s/tags/list" % repo)
        if status == 404:
            return []
        if status != 200:
            raise RuntimeError("tags: HTTP %s %s" % (status, body[:200]))
        return sorted(json.loads(body).get("tags") or [])

    def manifest(self, repo, reference):
        """(digest, media type, raw bytes) of a manifest, or None when absent."""
        status, headers, body = self.request("GET", "/v2/%s/manifests/%s" % (repo, reference),
                                             headers={"Accept": MANIFEST_ACCEPT})
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError("manifest: HTTP %s %s" % (status, body[:200]))
        return (headers.get("Docker-Content-Digest") or skopeo.digest_of(body),
                headers.get("Content-Type"), body)

    def has_blob(self, repo, digest):
        status, _, _ = self.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest))
        return status == 200

    def delete_manifest(self, repo, reference):
        """Delete a manifest (by tag it is resolved to its digest first)."""
        if not reference.startswith("sha256:"):
            m = self.manifest(repo, reference)
            if m is None:
                return False
            reference = m[0]
        status, _, _ = self.request("DELETE", "/v2/%s/manifests/%s" % (repo, reference))
        return status == 202

    def garbage_collect(self, delete_untagged=False):
        """Run ``docker-registry garbage-collect`` on the storage (stops/starts if running)."""
        was_running = self.running
        self._kill()
        args = [self.binary, "garbage-collect"]
        if delete_untagged:
            args.append("--delete-untagged")
        args.append(str(self.config_path))
        proc = subprocess.run(args, capture_output=True, text=True)
        if was_running:
            self.start()
        if proc.returncode != 0:
            raise RuntimeError("garbage-collect failed: %s" % proc.stderr[-2000:])
        return proc.stdout

    def blob_count(self):
        """Number of blobs in storage (for dedup checks)."""
        root = self.storage_dir / "docker" / "registry" / "v2" / "blobs"
        return sum(1 for p in root.rglob("data")) if root.exists() else 0

    def storage_bytes(self):
        root = self.storage_dir / "docker" / "registry" / "v2" / "blobs"
        return sum(p.stat().st_size for p in root.rglob("data")) if root.exists() else 0

    # -- skopeo conveniences (creds/TLS filled in)
    def skopeo_kw(self, cert_dir=None):
        return dict(creds=self.creds, cert_dir=cert_dir,
                    tls_verify=(cert_dir is not None) if self.tls else False)

    def digest(self, name, cert_dir=None):
        """Digest of ``name`` (``repo:tag``) as served by this registry (via skopeo)."""
        return registry_digest(self.ref(name), **self.skopeo_kw(cert_dir))

    def push_corpus(self, corpus, prefix="", cert_dir=None):
        kw = self.skopeo_kw(cert_dir)
        return corpus.push(self.address, prefix=prefix, creds=kw["creds"],
                           cert_dir=kw["cert_dir"], tls_verify=kw["tls_verify"])

    def __repr__(self):
        return "<UpstreamRegistry %s%s%s>" % (self.url, " auth" if self.users else "",
                                             " running" if self.running else "")
