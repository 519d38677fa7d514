"""The three floors import only downwards: tui -> runner -> infra; runner/remote is standard library only."""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports(folder: str):
    for path in (ROOT / folder).rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, alias.name
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield path, node.module


def test_infra_imports_neither_runner_nor_tui():
    bad = [(p, m) for p, m in imports("infra") if m.split(".")[0] in ("runner", "tui", "textual")]
    assert bad == []


def test_runner_never_imports_tui_or_textual():
    bad = [(p, m) for p, m in imports("runner") if m.split(".")[0] in ("tui", "textual")]
    assert bad == []


def test_remote_tools_use_the_standard_library_only():
    # trainrig_remote is this same folder under the name it has on the machine (see launch.py).
    allowed = set(sys.stdlib_module_names) | {"trainrig_remote"}
    bad = [(p, m) for p, m in imports("runner/remote") if m.split(".")[0] not in allowed]
    assert bad == []
