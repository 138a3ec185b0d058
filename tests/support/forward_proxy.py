"""A recording HTTP forward proxy for tests (plain http only, no CONNECT).

    with ForwardProxy(target_host="127.0.0.1") as proxy:      # 127.0.0.1:<free port>
        ... HTTP_PROXY=proxy.url ...
        proxy.requested                                       # ['GET http://up.test:5000/v2/']

Every request is forwarded to target_host at the port of its URL, whatever host the URL
names. So a client told to fetch http://upstream.invalid:PORT/ can only succeed through the
proxy (nothing resolves that name), which proves that it used the proxy; Go clients never
send loopback addresses to a proxy, so the name is what makes the proxy path testable here.
"""
import http.client
import http.server
import threading
from urllib.parse import urlsplit

from .upstream import free_port

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
              "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}


class ForwardProxy:
    def __init__(self, host="127.0.0.1", port=None, target_host="127.0.0.1"):
        self.host = host
        self.port = port or free_port(host)
        self.target_host = target_host
        self.requested = []
        self._lock = threading.Lock()
        self._server = None

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def start(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self):
                with proxy._lock:
                    proxy.requested.append("%s %s" % (self.command, self.path))
                parts = urlsplit(self.path)
                if parts.scheme != "http" or not parts.port:
                    self.send_error(400, "only absolute http URLs with a port")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                path = parts.path + ("?" + parts.query if parts.query else "")
                conn = http.client.HTTPConnection(proxy.target_host, parts.port, timeout=60)
                try:
                    # Header by header: registry clients repeat Accept once per media type.
                    conn.putrequest(self.command, path, skip_host=True,
                                    skip_accept_encoding=True)
                    for key, value in self.headers.items():
                        if key.lower() not in HOP_BY_HOP | {"content-length"}:
                            conn.putheader(key, value)
                    if body is not None:
                        conn.putheader("Content-Length", str(len(body)))
                    conn.endheaders(body)
                    response = conn.getresponse()
                    data = response.read()
                except OSError as error:
                    self.send_error(502, "upstream unreachable: %s" % error)
                    return
                finally:
                    conn.close()
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    # A HEAD answer's Content-Length is the size of what a GET would send.
                    if key.lower() not in HOP_BY_HOP and (
                            key.lower() != "content-length" or self.command == "HEAD"):
                        self.send_header(key, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self._server = http.server.ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
