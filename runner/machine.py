"""How to reach a run's machine and where trainrig's files live on it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Machine:
    host: str
    port: int
    user: str
    host_keys: tuple[str, ...]  # pinned public keys, OpenSSH format: never trust another
    client_key: str | None  # private key file; None = the user's agent and default keys
    python: str  # interpreter on the machine
    root: str  # trainrig's folder on the machine (relative paths start at the login folder)
    venv_cache: str
    shutdown_after: bool = False
    # The address the run's other machines reach this one at (its private network address); "" = host.
    private_host: str = ""

    def run_dir(self, run_id: str) -> str:
        return f"{self.root}/runs/{run_id}"

    @property
    def peer_host(self) -> str:
        return self.private_host or self.host

    @property
    def address(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    @classmethod
    def from_dict(cls, d: dict) -> "Machine":
        return cls(**{**d, "host_keys": tuple(d["host_keys"])})
