"""TPU pod slices in the catalog: each multi-host slice resolves with its hosts (Google's documented
topologies, each entry's hosts_source) at the price of all its chips, and `trainrig accelerators` lists
the hosts."""

import json
from pathlib import Path

import pytest

from infra import catalog
from infra.catalog import format_table, load, resolve

RAW = json.loads(Path(catalog.__file__).with_name("accelerators.json").read_text())


# Hosts per slice from Google's documented topologies (hosts_source in each entry): v4 has 4 chips per host
# and its type counts TensorCores (2 per chip); v5e and v6e multi-host slices are made of 4-chip VMs.
POD_SLICES = {"v4-16": 2, "v4-32": 4, "v5litepod-16": 4, "v5litepod-32": 8, "v6e-16": 4, "v6e-32": 8}


@pytest.mark.parametrize("name,hosts", POD_SLICES.items())
def test_a_pod_slice_resolves_with_its_hosts_and_the_price_of_all_its_chips(name, hosts):
    offer = resolve("gcp", name)
    assert (offer.kind, offer.count, offer.machine_type, offer.hosts) == ("tpu", 1, name, hosts)
    single = resolve("gcp", {"v4": "v4-8", "v5litepod": "v5litepod-8", "v6e": "v6e-8"}[name.rsplit("-", 1)[0]])
    assert single.hosts == 1 and offer.tpu_runtime == single.tpu_runtime
    chips = int(name.rsplit("-", 1)[1]) // (2 if name.startswith("v4") else 1)
    per_chip = single.hourly_usd / (4 if name.startswith("v4") else 8)
    assert offer.hourly_usd == pytest.approx(chips * per_chip)
    entry = next(e for e in RAW["entries"] if e["name"] == name)
    assert entry["hosts_source"].startswith("https://cloud.google.com/tpu/docs/")


def test_every_other_machine_is_one_host():
    assert all(m.hosts == 1 for e in load().entries() for m in e.machines if e.name not in POD_SLICES)


def test_the_table_lists_the_hosts_of_each_slice():
    lines = format_table("gcp").splitlines()
    column = lines[0].index("HOSTS")  # the columns are padded to the header's positions

    def hosts_of(name: str) -> str:
        row = next(line for line in lines if line.split()[1:2] == [name])
        return row[column:].split()[0]

    assert {name: hosts_of(name) for name in POD_SLICES} == {n: str(h) for n, h in POD_SLICES.items()}
    assert hosts_of("v5litepod-8") == "1" and hosts_of("T4") == "1"
