"""A real haproxy (Debian package) configured from website-relation `services` data the way
the haproxy charm renders it, plus its stats socket.

The charm's rendering, restated: one `frontend haproxy-<service_port>` bound to
service_host:service_port with `default_backend <service_name>`, and one `backend
<service_name>` holding the service options and one `server <name> <ip>:<port> <options>`
line per server. `mode tcp|http` and `option tcplog|httplog` go to both sections; options
that only make sense on a frontend (bind, acl, maxconn, timeout client, ...) go there, all
others to the backend. Defaults follow the charm's default config (mode http, httplog,
dontlognull, retries 3, its timeouts).

All test "machines" share this host's network, so the frontend binds the proxy unit's own
loopback address instead of the published 0.0.0.0 (which would collide with the registry
units listening on the same port on their addresses).
"""
import csv
import io
import os
import signal
import socket
import subprocess
import tempfile
import time

BOTH_SECTIONS = ('mode tcp', 'option tcplog', 'mode http', 'option httplog')
FRONTEND_ONLY = ('acl', 'backlog', 'bind', 'capture ', 'clitimeout', 'default_backend',
                 'http-request', 'maxconn', 'monitor', 'option accept-invalid-http-request',
                 'option clitcpka', 'option contstats', 'option dontlog-normal',
                 'option dontlognull', 'option http-use-proxy-header',
                 'option log-separate-errors', 'option logasap', 'option socket-stats',
                 'option tcp-smart-accept', 'rate-limit sessions', 'redirect',
                 'tcp-request', 'timeout client', 'use_backend')

HEADER = """global
    maxconn 4096
    stats socket {socket} mode 600 level admin

defaults
    log global
    mode http
    option httplog
    option dontlognull
    retries 3
    timeout queue 20000
    timeout client 50000
    timeout connect 5000
    timeout server 50000
"""


def render(services, bind_host, stats_socket):
    lines = [HEADER.format(socket=stats_socket)]
    for service in services:
        options = [o.strip() for o in service.get('service_options') or []]
        both = [o for o in options if o in BOTH_SECTIONS]
        frontend = both + [o for o in options
                           if o not in both and o.startswith(FRONTEND_ONLY)]
        backend = both + [o for o in options if o not in both and o not in frontend]
        lines.append('frontend haproxy-{}'.format(service['service_port']))
        lines.append('    bind {}:{}'.format(bind_host, service['service_port']))
        lines.append('    default_backend {}'.format(service['service_name']))
        lines += ['    ' + o for o in frontend]
        lines.append('')
        lines.append('backend {}'.format(service['service_name']))
        lines += ['    ' + o for o in backend]
        for name, address, port, server_options in service.get('servers') or []:
            lines.append('    server {} {}:{} {}'.format(name, address, port,
                                                        server_options or '').rstrip())
        lines.append('')
    return '\n'.join(lines) + '\n'


class HAProxy:
    def __init__(self, services, bind_host, base_dir=None):
        self.dir = tempfile.mkdtemp(prefix='haproxy-', dir=base_dir)
        self.socket = os.path.join(self.dir, 'stats.sock')
        self.config_path = os.path.join(self.dir, 'haproxy.cfg')
        self.log_path = os.path.join(self.dir, 'haproxy.log')
        with open(self.config_path, 'w') as stream:
            stream.write(render(services, bind_host, self.socket))
        self.process = None

    def config(self):
        with open(self.config_path) as stream:
            return stream.read()

    def start(self):
        check = subprocess.run(['haproxy', '-c', '-f', self.config_path], capture_output=True,
                               text=True)
        if check.returncode != 0:
            raise RuntimeError('haproxy rejects its config: {}\n{}'.format(
                check.stdout + check.stderr, self.config()))
        log = open(self.log_path, 'wb')
        self.process = subprocess.Popen(['haproxy', '-db', '-f', self.config_path],
                                        stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.socket):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('haproxy did not start: ' + self.log())
            time.sleep(0.1)
        return self

    def log(self):
        with open(self.log_path, errors='replace') as stream:
            return stream.read()[-3000:]

    def stats(self):
        """{server name: row of `show stat`} for the servers (not frontends/backends)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(self.socket)
            sock.sendall(b'show stat\n')
            data = b''
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        text = data.decode().lstrip('# ')
        return {row['svname']: row for row in csv.DictReader(io.StringIO(text))
                if row['svname'] not in ('FRONTEND', 'BACKEND')}

    def wait_for(self, predicate, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.stats()
            if predicate(stats):
                return stats
            time.sleep(0.5)
        raise TimeoutError('haproxy stats never matched: {}'.format(
            {name: row['status'] for name, row in self.stats().items()}))

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
