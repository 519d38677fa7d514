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


CLOUD_CLIENTS = {"boto3", "botocore", "urllib3", "google", "google_crc32c"}  # urllib3 comes with botocore


def test_remote_tools_use_the_standard_library_only():
    # trainrig_remote is this same folder under the name it has on the machine (see launch.py).
    # The bucket stores alone use the cloud clients, which the machine's tool venv provides.
    allowed = set(sys.stdlib_module_names) | {"trainrig_remote"}
    bad = []
    for p, m in imports("runner/remote"):
        top = m.split(".")[0]
        if top in allowed or (top in CLOUD_CLIENTS and "stores" in p.parts or p.name == "sync.py" and top == "google_crc32c"):
            continue
        bad.append((p, m))
    assert bad == []


def test_cloud_clients_are_imported_only_inside_functions():
    """So the supervisor, the follower and `trainrig --help` never pay for them."""
    for path in (ROOT / "runner").rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in CLOUD_CLIENTS for n in names), (path, names)


def test_remote_tools_run_on_python_3_8():
    """The machine's python3 may be old (the tools are copied there as they are)."""
    import subprocess

    run_vermin = "import sys; from vermin.main import main; sys.argv[0] = \"vermin\"; sys.exit(main())"
    done = subprocess.run([sys.executable, "-c", run_vermin, "-q", "-t=3.8-", "--violations", "runner/remote"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_command_line_imports_no_textual_until_the_ui_opens():
    """`trainrig --help` and every verb stay fast: Textual (and rich) load only for the terminal UI."""
    import subprocess

    probe = ("import sys\nimport tui.cli as cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'asyncssh')))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_only_the_ui_modules_import_textual():
    """The command line's own modules never import Textual at their top (cli imports tui.app in a function)."""
    ui = {"app.py", "messages.py", "run_actions.py"}
    for path in (ROOT / "tui").glob("*.py"):
        if path.name in ui:
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("textual", "rich") or n.startswith("tui.app") for n in names), (path, names)
