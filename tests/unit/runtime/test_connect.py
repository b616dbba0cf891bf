"""Attaching to a cluster fails fast and in one line: closed ports, dashboard URLs given as a
driver address, a dashboard that refuses us. (The token-auth head node itself is in
tests/integration/test_cluster_path.py.)"""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from swarm_ray.runtime.connect import ClusterUnavailable, check_dashboard, connect, probe


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_probe_of_a_closed_port_is_one_line_in_well_under_a_second() -> None:
    t0 = time.monotonic()
    with pytest.raises(ClusterUnavailable) as err:
        probe(f"127.0.0.1:{_closed_port()}")
    assert time.monotonic() - t0 < 1.0
    assert "\n" not in str(err.value) and "cannot reach the Ray cluster" in str(err.value)


@pytest.mark.parametrize("address", ["head-node", "head:port", ""])
def test_probe_refuses_what_is_not_host_port(address: str) -> None:
    with pytest.raises(ClusterUnavailable, match="not a Ray cluster address"):
        probe(address)


def test_a_dashboard_url_is_not_taken_for_a_driver_address() -> None:
    with pytest.raises(ClusterUnavailable, match="dashboard address"):
        connect("http://127.0.0.1:8265")


class _Refusing(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(401 if not self.headers.get("Authorization") else 403)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_dashboard():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_dashboard_that_wants_a_token_we_lack_names_the_token(
    refusing_dashboard, monkeypatch
) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # no token sent
    with pytest.raises(ClusterUnavailable, match=r"requires an authentication token.*auth_token"):
        check_dashboard(refusing_dashboard)


def test_an_unreachable_dashboard_names_the_address(monkeypatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ClusterUnavailable, match=f"cannot reach the Ray dashboard at {url}"):
        check_dashboard(url)
