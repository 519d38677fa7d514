"""Two first-time runs at once both make the Pulumi passphrase: real processes released together by a
barrier, round after round, each in a fresh state folder. Every one must get the same whole
passphrase (no FileExistsError, no empty file read while another process is still writing it)."""

from __future__ import annotations

import multiprocessing
import stat

from infra.engine import passphrase_file

PROCESSES = 6
ROUNDS = 40


def _contender(folders: list[str], barrier, results) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    for folder in folders:
        barrier.wait()
        try:
            results.put((folder, "ok", passphrase_file(Path(folder)).read_text()))
        except Exception as e:  # reported to the test, which fails on it
            results.put((folder, "error", repr(e)))


def test_first_runs_at_once_share_one_whole_passphrase(tmp_path):
    folders = [tmp_path / f"state-{i}" for i in range(ROUNDS)]
    for folder in folders:
        folder.mkdir()
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    workers = [context.Process(target=_contender, args=([str(f) for f in folders], barrier, results))
               for _ in range(PROCESSES)]
    for w in workers:
        w.start()
    seen = [results.get(timeout=120) for _ in range(PROCESSES * ROUNDS)]
    for w in workers:
        w.join(timeout=30)
    assert all(w.exitcode == 0 for w in workers)
    errors = [s for s in seen if s[1] != "ok"]
    assert errors == [], errors[:3]
    for folder in folders:
        got = {text for f, _, text in seen if f == str(folder)}
        assert len(got) == 1 and len(min(got)) >= 32, (folder, got)
        assert [p.name for p in folder.iterdir()] == ["pulumi-passphrase"]  # no candidate left behind
        assert stat.S_IMODE((folder / "pulumi-passphrase").stat().st_mode) == 0o600
