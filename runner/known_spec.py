"""`trainrig up RUN` / `trainrig run RUN`, where RUN names a run this computer knows rather than a code
folder: the run is provisioned again as its stack config (a cloud run, possibly edited to switch
clouds) or its journal record (any run, e.g. after `down`) describes it. The command line and the UI
both ask here."""

from __future__ import annotations

from pathlib import Path

from infra.errors import BadInput
from infra.names import check_run_id
from infra.spec import RunSpec
from runner.journal import Journal


def known_run_spec(code: str, given: list[str], journal: Journal) -> RunSpec | None:
    """The spec of the known run `code`, or None when `code` is meant as a folder. `given` names the
    spec options the user passed, which a known run refuses (its file or record is the spec)."""
    from infra.project import project_dir, stacks_dir
    from infra.stack_config import config_path, spec_from_stack

    if Path(code).is_dir() or "/" in code:
        return None
    try:
        rid = check_run_id(code)
    except BadInput:
        return None
    home = journal.root.parent
    config = config_path(stacks_dir(project_dir(home)), rid)
    if config.is_file():
        _refuse_options(rid, given, f"edit {config} instead of passing")
        return spec_from_stack(config.parent, rid, home)
    if not journal.exists(rid):
        return None
    spec = journal.load(rid).spec
    _refuse_options(rid, given, "it is provisioned again as recorded, so leave out")
    if not Path(spec.code_path).is_dir():
        raise BadInput(f"run {rid}'s code folder {spec.code_path} is gone: give the folder again, "
                       f"e.g. `trainrig up CODE_FOLDER --code-name {spec.code_name} --dataset-name {spec.dataset_name}`.")
    return spec


def _refuse_options(rid: str, given: list[str], what: str) -> None:
    if given:
        raise BadInput(f"run {rid} is known here: {what} {', '.join(given)} (or give a code folder to describe a new run).")
