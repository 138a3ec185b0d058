"""Docker helpers for tests: build/save the local registry image, run it."""

import fcntl
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-registry-image.sh"
DOCKER = os.environ.get("DOCKER", "docker")


def docker_available():
    if shutil.which(DOCKER) is None:
        return False
    return subprocess.run([DOCKER, "info"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


@contextmanager
def file_lock(path):
    """Exclusive flock on path (serialises builds across pytest processes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build_registry_image(tag=None, archive=None, distribution3=False, force=False):
    """Run scripts/build-registry-image.sh; returns the archive Path (or the tag)."""
    args = ["bash", str(BUILD_SCRIPT)]
    if distribution3:
        args.append("--distribution-3-layout")
    if force:
        args.append("--force")
    tag = tag or ("registry:3" if distribution3 else "registry:2")
    args.append(tag)
    if archive:
        args.append(str(archive))
    lock = Path(archive).with_name(".build.lock") if archive else \
        Path("/tmp/.registry-image-build.lock")
    with file_lock(lock):
        proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("build-registry-image.sh failed:\n%s%s" % (proc.stdout, proc.stderr))
    return Path(archive) if archive else tag


def image_id(tag):
    proc = subprocess.run([DOCKER, "image", "inspect", tag, "--format", "{{.Id}}"],
                          capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def wait_http(url, timeout=20, ok=(200, 401)):
    """Poll url until it answers with a status in ok; returns the status."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status in ok:
                    return r.status
                last = r.status
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return e.code
            last = e.code
        except OSError as e:
            last = e
        time.sleep(0.2)
    raise TimeoutError("%s not answering after %ss: %s" % (url, timeout, last))


@contextmanager
def registry_container(image="registry:2", host="127.0.0.1", port=None, env=None,
                       volumes=(), name=None, args=()):
    """Run the registry image with --network host on host:port; yields (id, url)."""
    from .upstream import free_port
    port = port or free_port(host)
    cmd = [DOCKER, "run", "-d", "--network", "host",
           "-e", "REGISTRY_HTTP_ADDR=%s:%s" % (host, port)]
    for k, v in (env or {}).items():
        cmd += ["-e", "%s=%s" % (k, v)]
    for v in volumes:
        cmd += ["-v", v]
    if name:
        cmd += ["--name", name]
    cmd += list(args) + [image]
    cid = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()
    url = "http://%s:%s" % (host, port)
    try:
        yield cid, url
    finally:
        subprocess.run([DOCKER, "rm", "-f", "-v", cid], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
