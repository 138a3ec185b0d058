"""Readiness: only our own, steadily running registry counts as serving.

probe() talks to real HTTP servers on 127.0.0.1 (no registry needed: what matters is the
answer's status and headers); ready() runs against the fake docker engine.
"""
import http.server
import threading
from unittest import mock

import pytest

from charms.layer import registry_http, registry_files
from charms.layer.registry_container import FINGERPRINT_LABEL


def serve(status, headers):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header('Content-Length', '2')
            self.end_headers()
            self.wfile.write(b'{}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def http_server():
    servers = []

    def start(status, headers):
        servers.append(serve(status, headers))
        return 'http://127.0.0.1:{}'.format(servers[-1].server_address[1])
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


REGISTRY = {'Docker-Distribution-Api-Version': 'registry/2.0'}


@pytest.mark.parametrize('status', [200, 401])
def test_a_registry_answer_counts(http_server, status):
    assert registry_http.probe(http_server(status, REGISTRY)) == status
    assert registry_http.serves(status)


@pytest.mark.parametrize('status', [200, 401, 404])
def test_another_service_on_the_port_does_not_count(http_server, status):
    assert registry_http.probe(http_server(status, {})) is None


def test_nothing_listening_is_no_answer(http_server):
    url = http_server(200, REGISTRY)
    registry_service_port = url.rsplit(':', 1)[1]
    assert registry_http.probe('http://127.0.0.2:' + registry_service_port) is None


def test_ready_when_our_container_runs_and_a_registry_answers(fake_docker):
    fake_docker.add_container('registry', True, {FINGERPRINT_LABEL: 'f'})
    with mock.patch.object(registry_http, 'probe', return_value=200):
        assert registry_files.ready('http://127.0.0.1:5000', 'registry', timeout=0)


def test_not_ready_while_our_container_is_stopped(fake_docker):
    fake_docker.add_container('registry', False, {FINGERPRINT_LABEL: 'f'})
    with mock.patch.object(registry_http, 'probe', return_value=200):
        assert not registry_files.ready('http://127.0.0.1:5000', 'registry', timeout=0)


def test_not_ready_when_the_engine_restarted_the_container_during_the_probe(fake_docker):
    # A registry that cannot bind its port dies at once and is restarted by the engine;
    # the answer came from whoever holds the port.
    fake_docker.add_container('registry', True, {FINGERPRINT_LABEL: 'f'})

    def probe_while_restarting(*args, **kwargs):
        fake_docker.containers['registry']['starts'] += 1
        return 200
    with mock.patch.object(registry_http, 'probe', side_effect=probe_while_restarting):
        assert not registry_files.ready('http://127.0.0.1:5000', 'registry', timeout=0)
