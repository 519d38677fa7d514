"""`logs --node all`: nodes' logs interleaved as their chunks come must never mix inside a line,
whatever the chunks' cuts (runner/nodes.py Prefixer)."""

from __future__ import annotations

import random

from runner.nodes import Prefixer


def test_interleaved_chunks_cut_mid_line_give_whole_lines_of_one_node_each():
    logs = {k: b"".join(f"node {k} line {i}\n".encode() for i in range(200)) + f"node {k} tail".encode() for k in (0, 1)}
    rng = random.Random(7)
    pre = {k: Prefixer(k) for k in logs}
    pos = {k: 0 for k in logs}
    out = b""
    while any(pos[k] < len(logs[k]) for k in logs):
        k = rng.choice([k for k in logs if pos[k] < len(logs[k])])
        n = rng.randint(1, 40)  # cuts anywhere, mid-line included
        out += pre[k].feed(logs[k][pos[k]:pos[k] + n])
        pos[k] += n
    for k in logs:
        out += pre[k].flush()
    lines = out.split(b"\n")
    for k in logs:
        mine = [line for line in lines if line.startswith(f"[{k}] ".encode())]
        assert b"\n".join(m[len(f"[{k}] "):] for m in mine) == logs[k]  # each node's, whole, in order (its tail ended)
    assert all(line.startswith((b"[0] node 0 ", b"[1] node 1 ")) for line in lines if line)


def test_a_line_longer_than_the_hold_is_handed_on_rather_than_held_without_bound():
    pre = Prefixer(3)
    bar = b"\r" + b"#" * (Prefixer.MAX_HELD + 10)  # a progress bar that never ends its line
    first = pre.feed(bar)
    assert first.startswith(b"[3] ") and len(first) == len(bar) + 4
    assert pre.feed(b" done\n") == b" done\n"  # the same line goes on: no second prefix
    assert pre.feed(b"next\n") == b"[3] next\n"
