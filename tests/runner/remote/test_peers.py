"""The nodes' failure messages (runner/remote/peers.py), over real loopback sockets: a stranger's or
malformed message never ends a node's listener nor stops its training; the run's own failure
message, with its secret, does."""

from __future__ import annotations

import json
import socket
import threading

from runner.remote.config import SupervisorConfig
from runner.remote.peers import Peers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _send(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(data)


def test_garbage_and_a_wrong_secret_are_ignored_and_the_runs_own_failure_stops_the_node():
    ports = [_free_port(), _free_port()]
    config = SupervisorConfig(run_id="peers-none", venv_cache="/nowhere", node_rank=0,
                              peers=[["127.0.0.1", p] for p in ports], peer_token="s3cret")
    stopped = threading.Event()
    peers = Peers(config, stopped.set).listen()
    try:
        def message(**over: object) -> bytes:
            msg = {"token": "s3cret", "run_id": "peers-none", "rank": 1, "outcome": "failed", "reason": "boom"}
            msg.update(over)
            return (json.dumps(msg) + "\n").encode()

        for junk in (b"[]\n", b"\xff\xfe\n", b"{\"rank\": 1}\n", b"null\n", message(token="guess"), message(run_id="other"),
                     message(rank="one")):
            _send(ports[0], junk)
        assert not stopped.wait(0.5) and peers.failed_peer is None  # the listener lives on, the training too
        _send(ports[0], message())
        assert stopped.wait(5)
        assert peers.failed_peer == (1, "failed", "boom")
    finally:
        peers._done.set()
        if peers._sock is not None:
            peers._sock.close()
