"""Thin wrappers around the skopeo CLI used by the test-support helpers.

References may be given with or without a transport; a bare reference such as
``127.0.0.1:5000/test/app:1.0`` means ``docker://127.0.0.1:5000/test/app:1.0``.

TLS handling for registry references (``tls_verify`` / ``cert_dir``):
- default: ``--*-tls-verify=false`` (plain HTTP, or HTTPS without checks);
- ``cert_dir`` given: verification on, CA (``*.crt``) and client pairs
  (``*.cert``/``*.key``) taken from that directory;
- ``tls_verify=True``/``False`` forces the setting either way.
"""

import hashlib
import json
import os
import shutil
import subprocess
import time

SKOPEO = os.environ.get("SKOPEO", "skopeo")
DEFAULT_TIMEOUT = 600

_TRANSPORTS = ("docker://", "oci:", "oci-archive:", "docker-archive:", "dir:",
               "docker-daemon:", "containers-storage:")


class SkopeoError(RuntimeError):
    def __init__(self, args, returncode, stdout, stderr):
        self.args_ = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__("skopeo %s failed (rc=%s): %s" % (
            " ".join(args[1:3]), returncode, (stderr or stdout or "").strip()[-2000:]))


def available():
    return shutil.which(SKOPEO) is not None


def docker_ref(ref):
    """Return ref with the docker:// transport prefixed when it has none."""
    if ref.startswith(_TRANSPORTS):
        return ref
    return "docker://" + ref


def _creds_str(creds):
    if creds is None:
        return None
    if isinstance(creds, (tuple, list)):
        return "%s:%s" % tuple(creds)
    return str(creds)


def tls_args(side, ref, tls_verify=None, cert_dir=None, creds=None):
    """skopeo options for one side (``src``, ``dest`` or ``""`` for inspect)."""
    if not docker_ref(ref).startswith("docker://"):
        return []
    p = "--%s-" % side if side else "--"
    args = []
    if cert_dir is not None:
        args.append("%scert-dir=%s" % (p, cert_dir))
    if tls_verify is None:
        tls_verify = cert_dir is not None
    args.append("%stls-verify=%s" % (p, "true" if tls_verify else "false"))
    c = _creds_str(creds)
    if c is not None:
        args.append("%screds=%s" % (p, c))
    return args


def run(args, timeout=DEFAULT_TIMEOUT, check=True, retries=0, text=False):
    """Run ``skopeo <args>``; return CompletedProcess (stdout bytes unless text)."""
    cmd = [SKOPEO, "--insecure-policy"] + list(args)
    attempt = 0
    while True:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)
        if proc.returncode == 0 or attempt >= retries:
            break
        attempt += 1
        time.sleep(0.5 * attempt)
    if text:
        proc = subprocess.CompletedProcess(proc.args, proc.returncode,
                                           proc.stdout.decode(errors="replace"),
                                           proc.stderr.decode(errors="replace"))
    if check and proc.returncode != 0:
        err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
        out = proc.stdout if isinstance(proc.stdout, str) else proc.stdout.decode(errors="replace")
        raise SkopeoError(cmd, proc.returncode, out, err)
    return proc


def copy(src, dest, all=True, src_creds=None, dest_creds=None, src_cert_dir=None,
         dest_cert_dir=None, src_tls_verify=None, dest_tls_verify=None,
         format=None, preserve_digests=True, retries=2, timeout=DEFAULT_TIMEOUT,
         extra_args=()):
    """``skopeo copy`` src to dest (bare refs are docker:// refs)."""
    src, dest = docker_ref(src), docker_ref(dest)
    args = ["copy", "--quiet"]
    if all:
        args.append("--all")
    if format:
        args.append("--format=%s" % format)
    if preserve_digests and not format:
        args.append("--preserve-digests")
    args += tls_args("src", src, src_tls_verify, src_cert_dir, src_creds)
    args += tls_args("dest", dest, dest_tls_verify, dest_cert_dir, dest_creds)
    args += list(extra_args)
    args += [src, dest]
    return run(args, timeout=timeout, retries=retries)


def inspect_raw(ref, creds=None, cert_dir=None, tls_verify=None, timeout=120):
    """Raw manifest (bytes) of ref, as the registry stores it."""
    ref = docker_ref(ref)
    args = ["inspect", "--raw"] + tls_args("", ref, tls_verify, cert_dir, creds) + [ref]
    return run(args, timeout=timeout, retries=1).stdout


def inspect(ref, creds=None, cert_dir=None, tls_verify=None, timeout=120):
    """``skopeo inspect`` JSON of ref (for an index: of the host platform's image)."""
    ref = docker_ref(ref)
    args = ["inspect"] + tls_args("", ref, tls_verify, cert_dir, creds) + [ref]
    return json.loads(run(args, timeout=timeout, retries=1).stdout)


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def registry_digest(ref, creds=None, cert_dir=None, tls_verify=None):
    """Digest (``sha256:...``) of the manifest or index ref resolves to."""
    return digest_of(inspect_raw(ref, creds=creds, cert_dir=cert_dir, tls_verify=tls_verify))


def list_tags(repo_ref, creds=None, cert_dir=None, tls_verify=None):
    """Tags of a repository (``host:port/repo``, no tag); [] if the repo is unknown."""
    ref = docker_ref(repo_ref)
    args = ["list-tags"] + tls_args("", ref, tls_verify, cert_dir, creds) + [ref]
    proc = run(args, check=False, timeout=120, text=True)
    if proc.returncode != 0:
        err = proc.stderr
        if any(m in err for m in ("NAME_UNKNOWN", "name unknown", "repository name not known",
                                  "404 (Not Found)")):
            return []
        raise SkopeoError(proc.args, proc.returncode, proc.stdout, proc.stderr)
    return sorted(json.loads(proc.stdout).get("Tags") or [])


def platforms(ref, creds=None, cert_dir=None, tls_verify=None):
    """``os/arch[/variant]`` strings of an index/manifest list ref ([] for an image)."""
    manifest = json.loads(inspect_raw(ref, creds=creds, cert_dir=cert_dir,
                                      tls_verify=tls_verify))
    out = []
    for m in manifest.get("manifests", []):
        p = m.get("platform") or {}
        s = "%s/%s" % (p.get("os", "?"), p.get("architecture", "?"))
        if p.get("variant"):
            s += "/" + p["variant"]
        out.append(s)
    return out
