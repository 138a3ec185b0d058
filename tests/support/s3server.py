"""A real S3-compatible server for tests: moto_server (PyPI `moto[server]`) on loopback.

    with MotoS3Server() as s3:                 # 127.0.0.1:<free port>
        s3.create_bucket("images")
        s3.keys("images", prefix="registry/")
        s3.requests()                          # every request moto answered, headers included

moto_server runs from its own venv ($MOTO_VENV, default /opt/moto-venv, made by
scripts/bootstrap.sh) because its dependencies (Flask, Jinja2 3, ...) clash with the charm's
pinned ones. Its request recorder (MOTO_ENABLE_RECORDING) writes every request to a JSON-lines
file, which lets a test see how the registry signs requests and which headers it sends.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

from .upstream import free_port

MOTO_VENV = os.environ.get("MOTO_VENV", "/opt/moto-venv")
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
ENTRY_START = '{"headers": {'


def moto_server_binary():
    path = Path(MOTO_VENV) / "bin" / "moto_server"
    if not path.exists():
        raise RuntimeError("%s not found: run scripts/bootstrap.sh (it installs moto[server] "
                           "into %s)" % (path, MOTO_VENV))
    return str(path)


class MotoS3Server:
    def __init__(self, host="127.0.0.1", port=None, workdir=None, start_timeout=30):
        self.host = host
        self.port = port or free_port(host)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="moto-s3-"))
        self.recording = self.workdir / "requests.jsonl"
        self.log_path = self.workdir / "moto.log"
        self.start_timeout = start_timeout
        self.proc = None

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def start(self):
        env = dict(os.environ, MOTO_ENABLE_RECORDING="true",
                   MOTO_RECORDER_FILEPATH=str(self.recording))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [moto_server_binary(), "-H", self.host, "-p", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("moto_server exited: %s" % self.log_path.read_text()[-2000:])
            try:
                self._request("GET", "/moto-api/")
                return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("moto_server not answering on %s" % self.url)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _request(self, method, path, data=None):
        # urllib would label a body as a form, which moto then fails to parse
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()

    # -- S3 (moto does not check signatures unless asked to, so plain requests do)
    def create_bucket(self, name):
        self._request("PUT", "/" + name, data=b"")

    def keys(self, bucket, prefix=""):
        """Every object key in bucket under prefix (ListObjectsV2, all pages)."""
        keys, token = [], None
        while True:
            query = "?list-type=2&prefix=" + urllib.request.quote(prefix, safe="")
            if token:
                query += "&continuation-token=" + urllib.request.quote(token, safe="")
            _, body = self._request("GET", "/%s%s" % (bucket, query))
            root = ET.fromstring(body)
            keys += [c.findtext(S3_NS + "Key") for c in root.iter(S3_NS + "Contents")]
            token = root.findtext(S3_NS + "NextContinuationToken")
            if not token:
                return keys

    # -- the recorder
    def requests(self):
        """[{'method', 'url', 'headers'}] of every S3 request recorded since the last reset."""
        if not self.recording.exists():
            return []
        # moto's threads append entries without a lock, so entries of concurrent requests
        # can interleave: take every entry that decodes, starting at each entry's opening.
        text = self.recording.read_text()
        decoder = json.JSONDecoder()
        out, start = [], text.find(ENTRY_START)
        while start != -1:
            try:
                entry, end = decoder.raw_decode(text, start)
            except ValueError:
                end = start + 1
            else:
                out.append({"method": entry["method"], "url": entry["url"],
                            "headers": {k.lower(): v for k, v in entry["headers"].items()}})
            start = text.find(ENTRY_START, end)
        return out

    def reset_recording(self):
        self._request("POST", "/moto-api/recorder/reset-recording")
