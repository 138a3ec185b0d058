"""A small client of the Registry HTTP API v2 (Distribution), in-process.

Basic and bearer-token authentication, TLS verified with a CA file, one keep-alive
connection per thread and host, streaming blob transfer. Credentials live only in this
process's memory: never on a command line, in a file or in a message.
"""
import base64
import hashlib
import http.client
import json
import re
import ssl
import threading
import urllib.parse

from charms.layer import registry_http

OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
MANIFEST_TYPES = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
SCHEMA1_TYPES = ('application/vnd.docker.distribution.manifest.v1+prettyjws',
                 'application/vnd.docker.distribution.manifest.v1+json')
ACCEPT = ', '.join(MANIFEST_TYPES)
CHUNK = 1 << 20


class RegistryError(Exception):
    """A registry answered with an error, or could not be reached. status: HTTP status or
    None."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


def sha256(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def json_object(data, what, error=RegistryError):
    """The JSON object data holds; error(message) when it holds something else."""
    try:
        document = json.loads(data)
    except ValueError:  # bad UTF-8 too
        raise error('{} is not valid JSON'.format(what))
    if not isinstance(document, dict):
        raise error('{} is not a JSON object'.format(what))
    return document


def _error_text(body):
    try:
        errors = json.loads(body.decode('utf-8', 'replace')).get('errors') or []
        return '; '.join('{} {}'.format(e.get('code', ''), e.get('message', '')).strip()
                         for e in errors)[:300]
    except (ValueError, AttributeError):
        return body[:200].decode('utf-8', 'replace').strip()


def _challenge(header):
    """(scheme, {param: value}) of a WWW-Authenticate header."""
    scheme, _, rest = (header or '').partition(' ')
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


class Registry:
    """One registry: url like 'https://host:port'."""

    def __init__(self, url, username=None, password=None, ca_file=None, verify=True,
                 check_hostname=True, client_cert=None, client_key=None, timeout=120):
        """client_cert, client_key: files of the certificate to present to a registry that
        requires client certificates (HTTPS only)."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ('http', 'https') or not parts.hostname:
            raise RegistryError('invalid registry URL {!r}'.format(url))
        self.url = '{}://{}'.format(parts.scheme, parts.netloc)
        self.netloc = parts.netloc
        self._username, self._password = username, password
        self.timeout = timeout
        self._context = None
        if parts.scheme == 'https':
            try:
                self._context = registry_http.tls_context(
                    ca_file, verify, check_hostname,
                    (client_cert, client_key) if client_cert else None)
            except (OSError, ssl.SSLError) as error:
                raise RegistryError('cannot load the client certificate {}: {}'.format(
                    client_cert, error))
        self._local = threading.local()
        self._lock = threading.Lock()
        self._basic = False      # the registry asked for basic auth: send it up front
        self._tokens = {}        # scope -> bearer token

    def __repr__(self):
        return '<Registry {}>'.format(self.url)

    # -- connections -----------------------------------------------------------------------

    def _connection(self, scheme, netloc):
        conns = getattr(self._local, 'conns', None)
        if conns is None:
            conns = self._local.conns = {}
        key = (scheme, netloc)
        if key not in conns:
            if scheme == 'https':
                context = self._context if netloc == self.netloc else \
                    ssl.create_default_context()
                conns[key] = http.client.HTTPSConnection(netloc, timeout=self.timeout,
                                                         context=context, blocksize=CHUNK)
            else:
                conns[key] = http.client.HTTPConnection(netloc, timeout=self.timeout,
                                                        blocksize=CHUNK)
        return conns[key]

    def _send(self, method, url, headers, body):
        """One exchange; returns the response (body unread). Retries once on a stale
        keep-alive connection when the body can be sent again."""
        parts = urllib.parse.urlsplit(url)
        target = parts.path + ('?' + parts.query if parts.query else '')
        for attempt in (0, 1):
            conn = self._connection(parts.scheme, parts.netloc)
            try:
                conn.request(method, target, body=body, headers=headers)
                return conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError, http.client.CannotSendRequest) as error:
                conn.close()
                if attempt or not (body is None or isinstance(body, bytes)):
                    raise RegistryError('{} {}: connection lost ({})'.format(
                        method, parts.path, error))
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                raise RegistryError('cannot reach {}: {}'.format(parts.netloc, error))
            except BaseException:
                conn.close()  # a body cut short (ExactBody refused it) leaves it unusable
                raise

    # -- authentication --------------------------------------------------------------------

    def _basic_credentials(self):
        return 'Basic ' + base64.b64encode('{}:{}'.format(
            self._username, self._password).encode()).decode()

    def _auth_header(self, scope):
        with self._lock:
            if scope in self._tokens:
                return 'Bearer ' + self._tokens[scope]
            if self._basic and self._username is not None:
                return self._basic_credentials()
        return None

    def _authenticate(self, header, scope, sent):
        """Get what a 401 asks for; sent: the Authorization the refused request carried."""
        scheme, params = _challenge(header)
        if scheme == 'basic':
            if self._username is None or (sent or '').startswith('Basic '):
                raise RegistryError('{}: authentication required (check the credentials)'
                                    .format(self.netloc), 401)
            self._basic = True
            return
        if scheme != 'bearer' or 'realm' not in params:
            raise RegistryError('{}: unsupported authentication {!r}'.format(
                self.netloc, scheme), 401)
        # One scope parameter per scope, as the token specification asks (a challenge
        # lists several separated by spaces, e.g. for a cross-repository mount).
        query = [('service', params['service'])] if params.get('service') else []
        query += [('scope', s) for s in (params.get('scope') or scope).split()]
        url = params['realm'] + ('&' if '?' in params['realm'] else '?') + \
            urllib.parse.urlencode(query)
        if urllib.parse.urlsplit(url).scheme not in ('http', 'https'):
            raise RegistryError('{}: invalid token realm'.format(self.netloc), 401)
        headers = {}
        if self._username is not None and self._realm_may_see_credentials(url):
            headers['Authorization'] = self._basic_credentials()
        response = self._send('GET', url, headers, None)
        body = _read(response, 'the token answer of ' + self.netloc)
        if response.status != 200:
            raise RegistryError('{}: token request refused (HTTP {})'.format(
                self.netloc, response.status), response.status)
        answer = json_object(body, 'the token answer of ' + self.netloc)
        token = answer.get('token') or answer.get('access_token')
        if not isinstance(token, str) or not token:
            raise RegistryError('{}: the token answer holds no token'.format(self.netloc))
        with self._lock:
            self._tokens[scope] = token

    def _realm_may_see_credentials(self, url):
        """The credentials were given for this registry: its token service may have them
        when it is the same host, or over HTTPS (as Docker Hub's auth.docker.io); never in
        clear to another host. Without them the token request is anonymous."""
        realm = urllib.parse.urlsplit(url)
        return realm.hostname == urllib.parse.urlsplit(self.url).hostname or \
            realm.scheme == 'https'

    def request(self, method, path, scope, headers=None, body=None, ok=(200,),
                follow=True, stream=False):
        """(status, response, body) of a request to path; with stream, body is a BlobStream
        to read and close instead of bytes.

        scope: the token scope the request needs ('repository:name:pull'). Statuses not in
        ok raise RegistryError (404 included; callers that expect it list it).
        """
        url = self.url + path
        for attempt in range(3):
            all_headers = dict(headers or {})
            auth = self._auth_header(scope)
            if auth:
                all_headers['Authorization'] = auth
            response = self._send(method, url, all_headers, body)
            if response.status == 401 and attempt < 2 and (body is None or
                                                            isinstance(body, bytes)):
                _read(response, path)
                self._authenticate(response.getheader('WWW-Authenticate'), scope, auth)
                continue
            break
        if follow and response.status in (301, 302, 303, 307, 308) and method in ('GET',
                                                                                  'HEAD'):
            _read(response, path)
            url = urllib.parse.urljoin(url, response.getheader('Location') or '')
            # Storage redirects (S3, CDNs) carry their own signature: no credentials.
            response = self._send(method, url, dict(headers or {}), None)
        if response.status not in ok:
            text = _error_text(_read(response, path)) if method != 'HEAD' else ''
            raise RegistryError('{} {} on {}: HTTP {}{}'.format(
                method, path.split('?')[0], self.netloc, response.status,
                ' ' + text if text else ''), response.status)
        if stream:
            parts = urllib.parse.urlsplit(url)
            return response.status, response, BlobStream(
                response, self._connection(parts.scheme, parts.netloc), path)
        return response.status, response, _read(response, path)

    # -- API -------------------------------------------------------------------------------

    def ping(self):
        self.request('GET', '/v2/', 'registry:catalog:*')

    def manifest(self, repo, reference, accept=ACCEPT):
        """(digest, media type, raw bytes). Raises RegistryError (status 404 when absent)."""
        _, response, data = self.request('GET', '/v2/{}/manifests/{}'.format(repo, reference),
                                         _pull(repo), {'Accept': accept})
        media_type = (response.getheader('Content-Type') or '').split(';')[0].strip()
        if media_type in ('', 'application/json', 'text/plain'):
            document = json_object(data, 'manifest {} of {}'.format(reference, repo))
            media_type = document.get('mediaType') or media_type
        digest = sha256(data)
        if reference.startswith('sha256:') and digest != reference:
            raise RegistryError('{}@{}: the registry sent a manifest of digest {}'.format(
                repo, reference, digest))
        return digest, media_type, data

    def manifest_digest(self, repo, reference):
        """Digest of a manifest (HEAD, which registries such as Docker Hub do not count as
        a pull), or None when absent."""
        status, response, _ = self.request(
            'HEAD', '/v2/{}/manifests/{}'.format(repo, reference), _pull(repo),
            {'Accept': ACCEPT}, ok=(200, 404))
        if status == 404:
            return None
        # The header is optional in the specification: without it, hash the bytes.
        return response.getheader('Docker-Content-Digest') or \
            self.manifest(repo, reference)[0]

    def put_manifest(self, repo, reference, media_type, data):
        _, response, _ = self.request('PUT', '/v2/{}/manifests/{}'.format(repo, reference),
                                      _push(repo), {'Content-Type': media_type}, data,
                                      ok=(201,))
        return response.getheader('Docker-Content-Digest') or sha256(data)

    def delete_manifest(self, repo, digest):
        self.request('DELETE', '/v2/{}/manifests/{}'.format(repo, digest), _delete(repo),
                     ok=(202,))

    def has_blob(self, repo, digest):
        status, _, _ = self.request('HEAD', '/v2/{}/blobs/{}'.format(repo, digest),
                                    _pull(repo), ok=(200, 404))
        return status == 200

    def open_blob(self, repo, digest):
        """A BlobStream of the blob's bytes (close it after)."""
        return self.request('GET', '/v2/{}/blobs/{}'.format(repo, digest), _pull(repo),
                            stream=True)[2]

    def blob(self, repo, digest):
        data = self.request('GET', '/v2/{}/blobs/{}'.format(repo, digest), _pull(repo))[2]
        if sha256(data) != digest:
            raise RegistryError('blob {} of {} does not match its digest'.format(digest, repo))
        return data

    def mount_blob(self, repo, digest, from_repo):
        """Cross-repository mount: True when mounted, else the upload URL it opened."""
        query = urllib.parse.urlencode({'mount': digest, 'from': from_repo})
        scope = '{} repository:{}:pull'.format(_push(repo), from_repo)
        status, response, _ = self.request(
            'POST', '/v2/{}/blobs/uploads/?{}'.format(repo, query), scope,
            {'Content-Length': '0'}, b'', ok=(201, 202))
        if status == 201:
            return True
        return response.getheader('Location')

    def start_upload(self, repo):
        _, response, _ = self.request('POST', '/v2/{}/blobs/uploads/'.format(repo),
                                      _push(repo), {'Content-Length': '0'}, b'',
                                      ok=(202,))
        return response.getheader('Location')

    def _upload_path(self, location, **query):
        url = urllib.parse.urljoin(self.url + '/', location)
        parts = urllib.parse.urlsplit(url)
        params = urllib.parse.parse_qsl(parts.query) + list(query.items())
        return parts.path + ('?' + urllib.parse.urlencode(params) if params else '')

    def upload(self, repo, digest, size, stream, location=None):
        """Monolithic upload of exactly size bytes read from stream (file-like) as blob
        digest: a source that sends more or fewer bytes fails the upload before its last
        byte goes out (nothing is smuggled onto the connection), and the registry refuses
        bytes of another digest."""
        location = location or self.start_upload(repo)
        self.request('PUT', self._upload_path(location, digest=digest), _push(repo),
                     {'Content-Type': 'application/octet-stream',
                      'Content-Length': str(size)},
                     ExactBody(stream, size, 'blob ' + digest), ok=(201,))

    def upload_chunks(self, repo, chunks):
        """Upload a blob of unknown size from an iterable of bytes; returns (digest, size)."""
        location = self.start_upload(repo)
        hasher, size = hashlib.sha256(), 0
        pending = b''
        for chunk in chunks:
            hasher.update(chunk)
            size += len(chunk)
            pending += chunk
            if len(pending) >= 8 * CHUNK:
                location = self._patch(repo, location, pending, size - len(pending))
                pending = b''
        if pending:
            location = self._patch(repo, location, pending, size - len(pending))
        digest = 'sha256:' + hasher.hexdigest()
        self.request('PUT', self._upload_path(location, digest=digest), _push(repo),
                     {'Content-Length': '0'}, b'', ok=(201,))
        return digest, size

    def _patch(self, repo, location, data, offset):
        _, response, _ = self.request(
            'PATCH', self._upload_path(location), _push(repo),
            {'Content-Type': 'application/octet-stream', 'Content-Length': str(len(data)),
             'Content-Range': '{}-{}'.format(offset, offset + len(data) - 1)}, data,
            ok=(202,))
        return response.getheader('Location')

    def catalog(self, page_size=1000):
        """Every repository name, following the Link pagination."""
        path = '/v2/_catalog?n={}'.format(int(page_size))
        repos = []
        while path:
            _, response, data = self.request('GET', path, 'registry:catalog:*')
            repos += json_object(data, 'the catalog of ' + self.netloc).get(
                'repositories') or []
            path = _next_link(response.getheader('Link'))
        return repos

    def tags(self, repo, page_size=1000):
        """Tags of a repository ([] when it has none or does not exist)."""
        path = '/v2/{}/tags/list?n={}'.format(repo, int(page_size))
        tags = []
        while path:
            status, response, data = self.request('GET', path, _pull(repo), ok=(200, 404))
            if status == 404:
                return tags
            tags += json_object(data, 'the tags of ' + repo).get('tags') or []
            path = _next_link(response.getheader('Link'))
        return tags


def _read(response, what):
    """The whole body of response; a transfer cut short is a RegistryError."""
    try:
        return response.read()
    except (OSError, http.client.HTTPException) as error:
        raise RegistryError('reading {} failed: {}'.format(what, error))


class BlobStream:
    """The body of a streamed response, read in pieces. Closing it before the end drops the
    connection, whose unread bytes would otherwise be taken for the next answer."""

    def __init__(self, response, connection, what):
        self._response, self._connection, self._what = response, connection, what

    def read(self, size=-1):
        try:
            return self._response.read(size)
        except (OSError, http.client.HTTPException) as error:
            raise RegistryError('reading {} failed: {}'.format(self._what, error))

    def close(self):
        unread = not self._response.isclosed()
        self._response.close()
        if unread:
            self._connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ExactBody:
    """A request body of exactly size bytes of stream: RegistryError when the stream ends
    early or holds more, raised before the last bytes are handed out, so that nothing past
    the blob reaches the connection. The digest is the registry's to verify: it hashes
    every upload and refuses one whose bytes do not match (DIGEST_INVALID); hashing here
    too would cost about a second of CPU per 512 MiB."""

    def __init__(self, stream, size, what):
        self._stream, self._left, self._what = stream, size, what
        self._checked = False

    def read(self, size=-1):
        if self._left == 0:
            self._check_end()
            return b''
        want = self._left if size is None or size < 0 else min(size, self._left)
        data = self._stream.read(want)
        if not data:
            raise RegistryError('the source of {} ended {} bytes short of its size'.format(
                self._what, self._left))
        if len(data) > want:  # a stream that ignores the size asked for
            raise RegistryError('the source of {} sent more than its size'.format(self._what))
        self._left -= len(data)
        if self._left == 0:
            self._check_end()
        return data

    def _check_end(self):
        if not self._checked and self._stream.read(1):
            raise RegistryError('the source of {} sent more than its size'.format(self._what))
        self._checked = True


def _next_link(header):
    if not header or 'rel="next"' not in header:
        return None
    target = header.split(';')[0].strip().strip('<>')
    parts = urllib.parse.urlsplit(target)
    return parts.path + ('?' + parts.query if parts.query else '')


def _pull(repo):
    return 'repository:{}:pull'.format(repo)


def _push(repo):
    return 'repository:{}:pull,push'.format(repo)


def _delete(repo):
    return 'repository:{}:delete'.format(repo)
