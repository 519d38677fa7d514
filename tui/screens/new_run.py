"""A new run: the same checks as the command line (infra/spec.py's build_spec), each refusal shown
next to the field it is about, before anything starts."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Switch

from infra.errors import BadInput
from infra.spec import RunSpec

TARGETS = ("local", "ssh", "gcp", "aws")
FIELDS = ("code", "code_name", "dataset", "dataset_name", "target", "host", "command", "accelerator", "zone",
          "region", "project", "max_runtime")
# Which field a refusal of build_spec is about, from the option or words it names (first match wins).
ABOUT = (("--accelerator", "accelerator"), ("--zone", "zone"), ("--region", "region"), ("--project", "project"),
         ("GCP project", "project"), ("--max-runtime", "max_runtime"), ("--host", "host"), ("--command", "command"),
         ("--module", "command"), ("code name", "code_name"), ("--code-name", "code_name"),
         ("dataset name", "dataset_name"), ("--dataset-name", "dataset_name"), ("code folder", "code"),
         ("dataset", "dataset"), ("--target", "target"), ("module", "command"))


def field_of(message: str) -> str:
    for words, name in ABOUT:
        if words in message:
            return name
    return "code"


def accelerators(cloud: str) -> list[tuple[str, str]]:
    """(label with memory and the cheapest $/hour, name) of the catalog's accelerators on `cloud`."""
    from infra.catalog import load

    out = []
    for e in load().entries(cloud):
        price = min((m.on_demand_usd_h for m in e.machines), default=None)
        label = f"{e.name} {e.memory_gb} GB" + (f" from ${price:.2f}/h" if price is not None else "")
        out.append((label, e.name))
    return out


class NewRunScreen(ModalScreen[RunSpec | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "submit", "Start")]

    def __init__(self, code: str = "") -> None:
        super().__init__()
        self.code = code

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form"):
            yield Label("New run: provision, upload, train  (ctrl+s starts)", classes="title")
            with VerticalScroll(id="fields"):
                yield from self._field("code", "code folder", Input(self.code, placeholder="./my-training", id="code"),
                                       pick=True)
                yield from self._field("code_name", "code name", Input(placeholder="default: the folder's name", id="code_name"))
                yield from self._field("dataset", "dataset", Input(placeholder="a folder, gs://... or s3://... (optional)",
                                                                   id="dataset"), pick=True)
                yield from self._field("dataset_name", "dataset name", Input(placeholder="e.g. beer-v2 (default: none)", id="dataset_name"))
                yield from self._field("target", "target", Select([(t, t) for t in TARGETS], value="local", allow_blank=False, id="target"))
                yield from self._field("host", "ssh host", Input(placeholder="user@address[:port] (target ssh)", id="host"))
                yield from self._field("command", "command", Input(placeholder="default: python train.py", id="command"))
                yield from self._field("accelerator", "accelerator", Select([], prompt="gcp/aws: from the catalog", id="accelerator"))
                yield from self._field("zone", "zone", Input(placeholder="gcp/aws: default from your cloud config", id="zone"))
                yield from self._field("region", "region", Input(placeholder="aws: default from your AWS config", id="region"))
                yield from self._field("project", "project", Input(placeholder="gcp: default from gcloud", id="project"))
                with Horizontal(classes="row"):
                    yield Label("spot", classes="name")
                    yield Switch(False, id="spot")
                yield from self._field("max_runtime", "max runtime", Input("12h", id="max_runtime"))
            with Horizontal(classes="buttons"):  # outside the scroll: always in sight, even at 80x24
                yield Button("Start", id="start", variant="primary")
                yield Button("Cancel", id="cancel")

    def _field(self, name: str, label: str, widget, pick: bool = False) -> ComposeResult:  # type: ignore[no-untyped-def]
        with Horizontal(classes="row"):
            yield Label(label, classes="name")
            yield widget
            if pick:  # a folder picker beside the field (tui/screens/pick_folder.py)
                yield Button("Browse", id=f"pick-{name}", classes="pick")
        yield Label("", id=f"error-{name}", classes="error")

    @on(Button.Pressed, ".pick")
    def _pick_folder(self, event: Button.Pressed) -> None:
        from tui.screens.pick_folder import PickFolder, start_folder

        name = (event.button.id or "").removeprefix("pick-")
        field = self.query_one(f"#{name}", Input)

        def picked(folder: str | None) -> None:
            if folder is not None:
                field.value = folder
            field.focus()

        what = "code folder" if name == "code" else "dataset folder"
        self.app.push_screen(PickFolder(what, start_folder(field.value if "://" not in field.value else "")), picked)

    @on(Select.Changed, "#target")
    def _target(self, event: Select.Changed) -> None:
        cloud = str(event.value)
        options = accelerators(cloud) if cloud in ("gcp", "aws") else []
        self.query_one("#accelerator", Select).set_options(options)

    def values(self) -> dict:
        def text(name: str) -> str | None:
            return self.query_one(f"#{name}", Input).value.strip() or None

        acc = self.query_one("#accelerator", Select).value
        return {"code": text("code") or "", "code_name": text("code_name"), "dataset": text("dataset"),
                "dataset_name": text("dataset_name"), "target": str(self.query_one("#target", Select).value),
                "host": text("host"), "command": text("command"), "zone": text("zone"),
                "region": text("region"), "project": text("project"),
                "accelerator": None if acc is Select.NULL else str(acc),
                "spot": self.query_one("#spot", Switch).value, "max_runtime": text("max_runtime") or "12h"}

    def build(self) -> RunSpec:
        from infra.cloud import CloudOptions
        from infra.durations import parse_duration
        from infra.spec import build_spec

        v = self.values()
        cloud = v["target"] in ("gcp", "aws")
        return build_spec(
            code=v["code"], code_name=v["code_name"], dataset_name=v["dataset_name"], dataset=v["dataset"],
            command=v["command"], target=v["target"], host=v["host"],
            max_runtime_s=parse_duration(v["max_runtime"], "--max-runtime"),
            cloud=CloudOptions(accelerator=v["accelerator"], zone=v["zone"], region=v["region"],
                               project=v["project"], spot=v["spot"]) if cloud else None,
        )

    def show_error(self, name: str, text: str) -> None:
        for f in FIELDS:
            self.query_one(f"#error-{f}", Label).remove_class("shown")
        label = self.query_one(f"#error-{name}", Label)
        label.add_class("shown")
        label.update(Text(text))  # a sentence may hold [..]: no markup
        self.query_one(f"#{name}").focus()

    @on(Button.Pressed, "#start")
    @on(Input.Submitted)
    def action_submit(self) -> None:
        try:
            spec = self.build()
        except BadInput as e:
            self.show_error(field_of(str(e)), str(e))
            return
        self.dismiss(spec)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
