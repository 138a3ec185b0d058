"""The clients the functional tests talk to a deployed registry with: an HTTP GET and the
skopeo CLI as a user runs it (no policy or TLS options added; see tests.support.skopeo for
the wrappers the other helpers use)."""
import base64
import hashlib
import os
import subprocess
import tempfile
import urllib.error
import urllib.request


def http_get(url, auth=None, timeout=5):
    """(status, body) of a GET; auth is (user, password)."""
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode('{}:{}'.format(*auth).encode()).decode()
        request.add_header('Authorization', 'Basic ' + token)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def skopeo(*args, check=True):
    return subprocess.run(('skopeo',) + args, capture_output=True, text=True, check=check)


def pulled_digest(ref, *extra):
    """Pull every blob of ref with skopeo (it verifies their digests) and return the
    manifest digest. extra: more skopeo copy options (credentials, TLS)."""
    with tempfile.TemporaryDirectory() as out:
        pulled = skopeo('copy', '--src-tls-verify=false', *extra, 'docker://' + ref,
                        'dir:' + out, check=False)
        assert pulled.returncode == 0, pulled.stderr
        with open(os.path.join(out, 'manifest.json'), 'rb') as f:
            return 'sha256:' + hashlib.sha256(f.read()).hexdigest()
