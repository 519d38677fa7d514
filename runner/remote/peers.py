"""Multi-node runs, on each machine: one node's failure ends the training on every node, with nobody
following (the client may be gone), and the launcher's command line around the training's own.

Each node's supervisor listens on a small TCP port of its peer (private) address. When its run ends
it tells every peer how; a peer's supervisor stops its training unless that node succeeded, and
records the run failed, naming the node (stopped, when that node was stopped on request or its
machine was taken away: preempted, or lost, whose restart then goes on on every node). A peer whose
supervisor stops answering without a word was lost with its machine. A message carries the run's
secret, so nothing else on the network stops a run. Standard library only, Python 3.8+.
"""

import hmac
import json
import os
import socket
import threading

from .phases import Outcome

MESSAGE_MAX = 4096
# A peer whose supervisor was seen listening and then no longer answers this many checks in a row
# (every HEARTBEAT_S) went with its machine, telling nobody: this node stops too (with nobody
# following, it would train on alone). A peer that ended said so first, success included.
HEARTBEAT_S = 1.0
LOST_AFTER = 5
# A peer's end that stops this node's training without failing it (said so in this node's reason).
PEER_ENDS = {Outcome.STOPPED.value: "was stopped", Outcome.PREEMPTED.value: "was preempted", Outcome.LOST.value: "was lost",
             Outcome.TIMED_OUT.value: "timed out", Outcome.INSTALL_FAILED.value: "failed to install"}
TELL_TIMEOUT_S = 3.0


def launcher_argv(config, venv_python, argv):
    """The training's argv wrapped in the launcher's (torchrun: `<venv python> -m torch.distributed.run
    ...` then `-m module ...` or the script and its arguments); unchanged without a launcher."""
    if not config.launcher_args:
        return argv
    if config.module or os.path.basename(argv[0]).startswith("python"):
        return [venv_python] + list(config.launcher_args) + list(argv[1:])  # `-m module ...` or `script.py ...`
    # Any other program: torchrun runs it as given.
    return [venv_python] + list(config.launcher_args) + ["--no-python"] + list(argv)


class Peers:
    """This node's link to the run's other nodes; inert for a one-node run."""

    def __init__(self, config, stop_training):
        self.config = config
        self.stop_training = stop_training  # called once, from the listener's thread, when a peer failed
        self.failed_peer = None  # (rank, outcome, reason) of the node whose end stopped this one
        self._sock = None
        self._lock = threading.Lock()
        self._ended_peers = set()  # ranks that said they succeeded: no longer checked
        self._done = threading.Event()

    @property
    def active(self):
        return len(self.config.peers) > 1

    def listen(self):
        if not self.active:
            return self
        host, port = self.config.peers[self.config.node_rank]
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
        sock.listen(16)
        self._sock = sock
        threading.Thread(target=self._serve, daemon=True).start()
        threading.Thread(target=self._heartbeat, daemon=True).start()
        return self

    def _heartbeat(self):
        seen, misses = set(), {}
        while not self._done.is_set():
            for rank, (host, port) in enumerate(self.config.peers):
                if rank == self.config.node_rank or rank in self._ended_peers or self._done.is_set():
                    continue
                if _answers(host, int(port)):
                    seen.add(rank)
                    misses[rank] = 0
                elif rank in seen:  # one not listening yet (still starting) is not lost
                    misses[rank] = misses.get(rank, 0) + 1
                    if misses[rank] >= LOST_AFTER and rank not in self._ended_peers:
                        self._peer_ended(rank, "lost", "its supervisor stopped answering: the machine went with it")
                        return
            self._done.wait(HEARTBEAT_S)

    def _serve(self):
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed at the end of the run
            try:
                conn.settimeout(2.0)
                data = b""
                while b"\n" not in data and len(data) < MESSAGE_MAX:
                    part = conn.recv(MESSAGE_MAX)
                    if not part:
                        break
                    data += part
                self._heard(data)
            except (OSError, ValueError, TypeError, KeyError, AttributeError):
                pass  # a half message, or a stranger's: ignored (never the end of the listener)
            finally:
                conn.close()

    def _heard(self, data):
        msg = json.loads(data.split(b"\n", 1)[0].decode("utf-8"))
        if not isinstance(msg, dict) or not hmac.compare_digest(str(msg.get("token", "")).encode(),
                                                               str(self.config.peer_token).encode()):
            return
        if msg.get("run_id") != self.config.run_id:
            return
        if msg.get("outcome") == Outcome.SUCCEEDED.value:  # it ended well: its silence from now on is no loss
            self._ended_peers.add(int(msg["rank"]))
            return
        self._peer_ended(int(msg["rank"]), str(msg.get("outcome", Outcome.FAILED)), str(msg.get("reason", ""))[:500])

    def _peer_ended(self, rank, outcome, reason):
        with self._lock:
            if self.failed_peer is not None:
                return
            self.failed_peer = (rank, outcome, reason)
        self.stop_training()

    def ended(self, status):
        """At the end of this node's run (before its final sync): a peer's failure becomes this node's
        outcome; this node's own end (success included) is told to every peer."""
        if not self.active:
            return
        self._done.set()
        if self._sock is not None:
            self._sock.close()
        with self._lock:
            failed_peer = self.failed_peer
            self.failed_peer = failed_peer or (-1, "", "")  # a message from now on changes nothing
        # A node stopped on request itself (`trainrig stop` stops every node) stays stopped.
        if failed_peer is not None and failed_peer[0] >= 0 and status.outcome != Outcome.STOPPED:
            rank, outcome, reason = failed_peer
            # A stop on request goes on as a stop, and so does a peer's machine taken away (the
            # run's outcome is then that node's restartable loss, not a failure of this one's);
            # any other end of a node fails the run.
            how = PEER_ENDS.get(outcome)
            status.outcome = Outcome.FAILED if how is None else Outcome.STOPPED
            status.reason = "node %d %s (%s): the training on node %d was stopped" % (
                rank, how or "failed", reason, self.config.node_rank)
            return
        # Success too: a peer that still trains must not take this node's silence for a lost machine.
        self.tell_all(status.outcome, status.reason)

    def tell_all(self, outcome, reason):
        msg = (json.dumps({"token": self.config.peer_token, "run_id": self.config.run_id, "rank": self.config.node_rank,
                           "outcome": str(outcome), "reason": reason}) + "\n").encode("utf-8")
        threads = [threading.Thread(target=_tell, args=(host, int(port), msg))
                   for rank, (host, port) in enumerate(self.config.peers) if rank != self.config.node_rank]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TELL_TIMEOUT_S + 1)


def _answers(host, port):
    """A supervisor listens there (a refused or timed-out connection: none does)."""
    try:
        with socket.create_connection((host, port), timeout=TELL_TIMEOUT_S):
            return True
    except OSError:
        return False


def _tell(host, port, msg):
    """One peer; one that has ended already (nothing listens) needs nothing."""
    try:
        with socket.create_connection((host, port), timeout=TELL_TIMEOUT_S) as s:
            s.sendall(msg)
    except OSError:
        pass
