"""The default SSH source range comes from an echo service; a real HTTP server on loopback plays it."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from runner.errors import BadInput
from runner.public_address import public_cidr


def _echo(answer: str) -> tuple[HTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = answer.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/"


def test_the_public_address_becomes_a_single_address_range():
    server, url = _echo("203.0.113.9\n")
    try:
        with pytest.raises(BadInput):
            public_cidr((url,), timeout=2)  # 203.0.113.0/24 is documentation space, not global
    finally:
        server.shutdown()
    server, url = _echo("8.8.4.4\n")
    try:
        assert public_cidr((url,), timeout=2) == "8.8.4.4/32"
    finally:
        server.shutdown()
    server, url = _echo("2001:4860:4860::8888")
    try:
        assert public_cidr((url,), timeout=2) == "2001:4860:4860::8888/128"
    finally:
        server.shutdown()


def test_the_next_service_is_asked_when_one_fails():
    bad, bad_url = _echo("<html>rate limited</html>")
    good, good_url = _echo("8.8.8.8")
    try:
        assert public_cidr(("http://127.0.0.1:1/", bad_url, good_url), timeout=2) == "8.8.8.8/32"
    finally:
        bad.shutdown()
        good.shutdown()


def test_no_answer_is_an_error_naming_ssh_from_never_a_guess():
    private, url = _echo("192.168.1.20")
    try:
        with pytest.raises(BadInput) as e:
            public_cidr(("http://127.0.0.1:1/", url), timeout=2)
    finally:
        private.shutdown()
    text = str(e.value)
    assert "--ssh-from" in text
    assert "192.168.1.20, which is not a public address" in text
    assert "127.0.0.1:1" in text
