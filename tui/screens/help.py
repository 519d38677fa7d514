"""`?`: the keys of every screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen

HELP = """\
**Runs** (the first screen): every run of the journal; `●` marks a run that still holds resources
(a machine, a stack: it may be billing).

- `enter` open the run; `/` filter the runs (`esc` clears); `n` a new run
- a sweep's slot machines and trials sit under its own row (`enter` there shows them alone)
- `s` `x` `d` `D`: start, stop, download, destroy the selected run
- `S` ask the Pulumi backend for stacks no run here knows of (they may be billing)
- `ctrl+p` the command palette: every action on every run
- `q` quit: trainings go on; open trainrig again to pick them up

**Run**: its live log, metric chart, telemetry, facts and timeline.

- `s` `x` `d` `D` as above; `esc` back to the runs
- the log: scrolling to its top (or `home` there) pages older lines in from disk; `end` follows it live again
- `m` next metric, `l` log scale
- `n` (a multi-node run) node 1's log, node 2's ..., every node's (`[K] ` before each line), rank 0's again
- `e` a shell on the machine (ssh with its pinned host key)
- `t` TensorBoard through SSH on localhost:6006 (`t` again stops it)

Destroy always asks first, and offers to download the outputs when they never were.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [("escape,q,question_mark", "app.pop_screen", "Close")]

    def compose(self) -> ComposeResult:
        from textual.widgets import Markdown  # markdown-it loads when help is first asked for

        with VerticalScroll(classes="dialog help"):
            yield Markdown(HELP)
