"""A tiny HTTP server imitating the clouds' metadata servers as their documentation describes them
(no real cloud is reachable from the tests): GCP's `instance/preempted` and
`instance/maintenance-event` (header Metadata-Flavor: Google required), and AWS IMDSv2's token and
`spot/instance-action` (404 until an interruption is scheduled)."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

TOKEN = "imds-token-for-tests"


class Metadata:
    """What the imitation answers; flip `preempted` (GCP) or `instance_action` (AWS) to notify."""

    def __init__(self) -> None:
        self.preempted = False
        self.maintenance_event = "NONE"
        self.instance_action: dict | None = None
        self.requests: list[str] = []
        self.port = 0

    @property
    def gcp_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/computeMetadata/v1/"

    @property
    def aws_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/latest/"


def _handler(state: Metadata) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def _send(self, code: int, body: str = "") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
            state.requests.append(f"PUT {self.path}")
            if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return self._send(200, TOKEN)
            self._send(400)

        def do_GET(self) -> None:  # noqa: N802
            state.requests.append(f"GET {self.path}")
            if self.path.startswith("/computeMetadata/v1/"):
                if self.headers.get("Metadata-Flavor") != "Google":
                    return self._send(403, "Missing Metadata-Flavor:Google header.")
                key = self.path[len("/computeMetadata/v1/"):]
                if key == "instance/preempted":
                    return self._send(200, "TRUE" if state.preempted else "FALSE")
                if key == "instance/maintenance-event":
                    return self._send(200, state.maintenance_event)
                return self._send(404)
            if self.path.startswith("/latest/meta-data/"):
                if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
                    return self._send(401)
                if self.path == "/latest/meta-data/spot/instance-action" and state.instance_action is not None:
                    return self._send(200, json.dumps(state.instance_action))
                return self._send(404)
            self._send(404)

    return Handler


@contextmanager
def metadata_server() -> Iterator[Metadata]:
    state = Metadata()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
