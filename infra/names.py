"""Run names: `<code-name>-<dataset-name>`, valid as a resource name on every cloud."""

import re

from infra.errors import BadInput

# A GCS/S3 bucket name is at most 63 characters and trainrig adds "trainrig-" and an 8-character
# suffix to it, so a run id must stay within 40; each half gets at most 24.
MAX_PART = 24
MAX_RUN_ID = 40
_NAME = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$|^[a-z]$")


def suggest(name: str) -> str:
    """A valid spelling close to `name` (used in error messages)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not slug or not slug[0].isalpha():
        slug = "r-" + slug if slug else "run"
    return re.sub(r"-+", "-", slug)[:MAX_PART].rstrip("-")


def check_name(what: str, name: str) -> str:
    if not name:
        raise BadInput(f"the {what} is empty: give one made of lowercase letters, digits and hyphens.")
    if len(name) > MAX_PART:
        raise BadInput(
            f"the {what} {name!r} is {len(name)} characters long: use at most {MAX_PART} "
            f"(e.g. {suggest(name)!r})."
        )
    if "--" in name or not _NAME.match(name):
        raise BadInput(
            f"the {what} {name!r} is not valid: use lowercase letters, digits and single hyphens, "
            f"starting with a letter and not ending with a hyphen (e.g. {suggest(name)!r})."
        )
    return name


def run_id(code_name: str, dataset_name: str) -> str:
    check_name("code name", code_name)
    check_name("dataset name", dataset_name)
    rid = f"{code_name}-{dataset_name}"
    if len(rid) > MAX_RUN_ID:
        raise BadInput(
            f"the run id {rid!r} is {len(rid)} characters long: keep code name and dataset name "
            f"together within {MAX_RUN_ID - 1} characters so every cloud accepts it as a resource name."
        )
    return rid


def check_run_id(rid: str) -> str:
    """A run id typed on the command line (e.g. `trainrig logs RUN`)."""
    if not rid or len(rid) > MAX_RUN_ID or "--" in rid or not _NAME.match(rid):
        raise BadInput(
            f"{rid!r} is not a run id: a run id is '<code-name>-<dataset-name>', see `trainrig ls`."
        )
    return rid
