"""The accelerator catalog: its data file is consistent, every refusal names what is available, and the happy
paths resolve to the Offer the cloud components need."""

import datetime
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra import catalog
from infra.catalog import Catalog, Offer, format_table, load, parse_accelerator, places, resolve
from infra.errors import BadInput

DATA = Path(catalog.__file__).with_name("accelerators.json")
RAW = json.loads(DATA.read_text())
GCP_ZONE = re.compile(r"^[a-z]+(-[a-z]+)*\d+-[a-z]$")
GCP_REGION = re.compile(r"^[a-z]+(-[a-z]+)*\d+$")
AWS_REGION = re.compile(r"^[a-z]{2}-[a-z]+-\d$")
AWS_ZONE = re.compile(r"^[a-z]{2}-[a-z]+-\d[a-z]$")


def refusal(*args, **kwargs) -> str:
    with pytest.raises(BadInput) as info:
        resolve(*args, **kwargs)
    assert info.value.exit_code == 2
    return str(info.value)


def one_sentence(text: str) -> None:
    assert text.endswith((".", "?")) and "\n" not in text, text


# -- the data file ------------------------------------------------------------------------------------------------


def test_note_says_the_prices_are_list_prices_not_live_and_must_be_checked():
    note = RAW["note"].lower()
    assert "list price" in note and "not fetched live" in note and "check" in note and "estimate" in note


def test_every_entry_has_a_price_for_every_count_a_source_and_an_iso_date():
    for e in RAW["entries"]:
        assert e["machines"], e["name"]
        counts = [m["count"] for m in e["machines"]]
        assert counts == sorted(set(counts)) and all(c >= 1 for c in counts), e["name"]
        for m in e["machines"]:
            assert isinstance(m["on_demand_usd_h"], (int, float)) and m["on_demand_usd_h"] > 0, (e["name"], m)
            assert m["spot_usd_h"] is None or 0 < m["spot_usd_h"] < m["on_demand_usd_h"], (e["name"], m)
            assert m["machine_type"], (e["name"], m)
        # a bigger machine of the same accelerator never costs less
        prices = [m["on_demand_usd_h"] for m in e["machines"]]
        assert prices == sorted(prices), e["name"]
        assert re.match(r"^https://[a-z0-9.-]+\.(google|amazon)\.com/\S+$", e["price_source"]), e["price_source"]
        assert datetime.date.fromisoformat(e["price_date"]) <= datetime.date.today()
        assert e["memory_gb"] > 0 and e["kind"] in ("gpu", "tpu") and e["cloud"] in ("gcp", "aws")
        assert e["image"], e["name"]


def test_names_are_unique_per_cloud_and_the_same_accelerator_is_spelled_the_same_on_both():
    seen = {}
    for e in RAW["entries"]:
        key = (e["cloud"], e["name"].lower())
        assert key not in seen, key
        seen[key] = e["name"]
    gcp = {n.lower(): n for (c, _), n in seen.items() if c == "gcp"}
    aws = {n.lower(): n for (c, _), n in seen.items() if c == "aws"}
    assert all(gcp[k] == aws[k] for k in gcp.keys() & aws.keys())
    assert {"t4", "l4", "a100-40gb", "a100-80gb", "h100"} <= gcp.keys() & aws.keys()
    assert "v100" in gcp and "v100" not in aws  # no supported Deep Learning AMI runs p3 any more


def test_places_look_like_places_and_zones_lie_in_the_listed_regions():
    for e in RAW["entries"]:
        assert e["regions"] and len(set(e["regions"])) == len(e["regions"]), e["name"]
        if e["cloud"] == "gcp":
            assert e["zones"], e["name"]
            assert all(GCP_REGION.match(r) for r in e["regions"]), e["regions"]
            assert all(GCP_ZONE.match(z) for z in e["zones"]), e["zones"]
            zone_regions = {z.rsplit("-", 1)[0] for z in e["zones"]}
            assert zone_regions == set(e["regions"]), e["name"]  # every region listed has a zone, and no more
            assert e["price_region"] in e["regions"], e["name"]
        else:
            assert all(AWS_REGION.match(r) for r in e["regions"]), e["regions"]
            assert all(AWS_ZONE.match(z) and z[:-1] in e["regions"] for z in e["zones"]), e["zones"]
            assert e["price_region"] in e["regions"], e["name"]


def test_gcp_gpus_on_n1_have_a_guest_accelerator_type_and_priced_as_vm_plus_gpus():
    n1 = [e for e in RAW["entries"] if any(m["machine_type"].startswith("n1-") for m in e["machines"])]
    assert {e["name"] for e in n1} == {"T4", "P4", "P100", "V100"}
    for e in n1:
        assert e["cloud"] == "gcp" and re.match(r"^nvidia-tesla-[a-z0-9]+$", e["gcp_accelerator_type"]), e["name"]
        assert all(m["machine_type"].startswith("n1-standard-") for m in e["machines"])
        for m in e["machines"]:
            assert m["on_demand_usd_h"] == pytest.approx(m["vm_on_demand_usd_h"] + m["count"] * e["gpu_on_demand_usd_h"])
    for e in RAW["entries"]:
        if e not in n1:
            assert e["gcp_accelerator_type"] is None, e["name"]  # the machine family carries the accelerator


def test_tpus_are_gcp_only_have_a_runtime_one_machine_named_as_the_tpu_api_spells_it():
    tpus = [e for e in RAW["entries"] if e["kind"] == "tpu"]
    assert {e["name"] for e in tpus} == {
        "v4-8", "v5litepod-1", "v5litepod-4", "v5litepod-8", "v6e-1", "v6e-4", "v6e-8",
        "v4-16", "v4-32", "v5litepod-16", "v5litepod-32", "v6e-16", "v6e-32",  # pod slices: several hosts
    }
    runtimes = {"v4": "tpu-ubuntu2204-base", "v5litepod": "v2-alpha-tpuv5-lite", "v6e": "v2-alpha-tpuv6e"}
    for e in tpus:
        assert e["cloud"] == "gcp"
        assert e["tpu_runtime"] == runtimes[e["name"].rsplit("-", 1)[0]]
        assert [(m["count"], m["machine_type"]) for m in e["machines"]] == [(1, e["name"])]
    assert all(e["tpu_runtime"] is None for e in RAW["entries"] if e["kind"] == "gpu")


def test_images_are_a_deep_learning_vm_family_or_a_dlami_name_pattern():
    for e in RAW["entries"]:
        if e["cloud"] == "aws":
            assert e["image"].startswith("Deep Learning Base ") and e["image"].endswith(" *"), e["image"]
            assert "(Ubuntu 22.04)" in e["image"], e["image"]  # 20.04 left the DLAMI support table
        elif e["kind"] == "gpu":
            assert re.match(r"^common-cu\d+-", e["image"]), e["image"]


def test_every_image_says_where_and_when_it_was_checked():
    for e in RAW["entries"]:
        assert re.match(r"^https://(cloud\.google\.com|docs\.aws\.amazon\.com)/\S+$", e["image_source"]), e["name"]
        assert datetime.date.fromisoformat(e["image_checked"]) <= datetime.date.today(), e["name"]


def test_loaded_catalog_matches_the_file_and_is_cached():
    cat = load()
    assert cat is load()
    assert len(cat.entries()) == len(RAW["entries"])
    assert {e.cloud for e in cat.entries("aws")} == {"aws"}
    assert len(cat.entries("gcp")) + len(cat.entries("aws")) == len(cat.entries())


def test_importing_the_catalog_reads_no_data():
    code = (
        "import pathlib\n"
        "opened = []\n"
        "pathlib.Path.read_text = lambda self, *a, **k: opened.append(str(self)) or ''\n"
        "import infra.catalog\n"
        "assert not infra.catalog.load.cache_info().currsize, 'loaded at import'\n"
        "assert not any('accelerators' in p for p in opened), opened\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=DATA.parent.parent, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- parse_accelerator --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("T4", ("T4", 1)),
        ("T4:2", ("T4", 2)),
        ("t4:4", ("T4", 4)),
        (" a100-80gb : 2 ", ("A100-80GB", 2)),
        ("v5litepod-8", ("v5litepod-8", 1)),
        ("V6E-4", ("v6e-4", 1)),
        ("a10g", ("A10G", 1)),
    ],
)
def test_parse_accelerator(text, expected):
    assert parse_accelerator(text) == expected


@pytest.mark.parametrize(
    "text, must_say",
    [
        ("T4:0", "at least 1"),
        ("T4:-1", "whole number"),
        ("T4:x", "whole number"),
        ("T4:", "whole number"),
        ("v4-8:2", "takes no count, so write v4-8"),
        ("v5litepod-8:1", "v5litepod-1, v5litepod-4, v5litepod-8, v5litepod-16 or v5litepod-32"),
        ("", "e.g. T4"),
        (":2", "e.g. T4"),
    ],
)
def test_parse_accelerator_refusals(text, must_say):
    with pytest.raises(BadInput) as info:
        parse_accelerator(text)
    assert must_say in str(info.value)
    one_sentence(str(info.value))


# -- resolve: happy paths -----------------------------------------------------------------------------------------


def test_t4_on_gcp_takes_the_catalogs_first_zone_and_prices_the_n1_vm_plus_the_gpu():
    offer = resolve("gcp", "T4")
    assert offer == Offer(
        cloud="gcp",
        accelerator="T4",
        count=1,
        kind="gpu",
        machine_type="n1-standard-8",
        gcp_accelerator_type="nvidia-tesla-t4",
        tpu_runtime=None,
        memory_gb=16,
        zone="us-central1-a",
        region="us-central1",
        hourly_usd=0.73,
        price_source="https://cloud.google.com/compute/gpus-pricing",
        price_date=offer.price_date,
        image="common-cu129-ubuntu-2204-nvidia-580",
    )
    datetime.date.fromisoformat(offer.price_date)
    assert resolve("gcp", "T4:1") == offer


def test_t4_times_four_on_gcp_in_a_given_zone():
    offer = resolve("gcp", "T4:4", zone="europe-west4-b")
    assert (offer.machine_type, offer.count, offer.zone, offer.region) == ("n1-standard-32", 4, "europe-west4-b", "europe-west4")
    assert offer.hourly_usd == pytest.approx(1.52 + 4 * 0.35)


def test_gcp_region_alone_picks_a_zone_of_that_region_that_offers_it():
    offer = resolve("gcp", "V100", region="europe-west4")
    assert offer.zone == "europe-west4-a" and offer.region == "europe-west4"


def test_a10g_on_aws_in_us_east_1():
    offer = resolve("aws", "A10G", region="us-east-1")
    assert (offer.cloud, offer.accelerator, offer.machine_type, offer.count) == ("aws", "A10G", "g5.xlarge", 1)
    assert offer.zone is None and offer.region == "us-east-1"
    assert offer.gcp_accelerator_type is None and offer.tpu_runtime is None and offer.memory_gb == 24
    assert offer.hourly_usd == 1.006
    assert offer.image == "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"
    assert offer.price_source.startswith("https://aws.amazon.com/")
    assert resolve("aws", "a10g:4", region="us-east-1", zone="us-east-1b").machine_type == "g5.12xlarge"
    assert resolve("aws", "a10g:4", region="us-east-1", zone="us-east-1b").zone == "us-east-1b"


def test_v5litepod_8_is_a_tpu_vm_with_its_runtime():
    offer = resolve("gcp", "v5litepod-8")
    assert (offer.kind, offer.count, offer.machine_type) == ("tpu", 1, "v5litepod-8")
    assert offer.tpu_runtime == "v2-alpha-tpuv5-lite" and offer.image == "v2-alpha-tpuv5-lite"
    assert offer.zone == "us-central1-a" and offer.region == "us-central1"
    assert offer.hourly_usd == pytest.approx(8 * 1.20)
    assert offer.price_source == "https://cloud.google.com/tpu/pricing"
    assert resolve("gcp", "v4-8").zone == "us-central2-b"


def test_spot_uses_the_spot_price():
    cat = load()
    on_demand = resolve("gcp", "T4:2", zone="us-central1-b")
    spot = resolve("gcp", "T4:2", zone="us-central1-b", spot=True)
    assert spot.hourly_usd == cat.find("gcp", "T4").machine(2).spot_usd_h
    assert 0 < spot.hourly_usd < on_demand.hourly_usd
    assert resolve("aws", "T4", region="eu-west-1", spot=True).hourly_usd == cat.find("aws", "T4").machine(1).spot_usd_h


# -- resolve: refusals, each naming what is available -------------------------------------------------------------


def test_unknown_accelerator_lists_the_clouds_names_and_guesses():
    text = refusal("gcp", "A100")
    assert "did you mean A100-40GB or A100-80GB?" in text
    assert all(n in text for n in ("T4", "L4", "H100", "v5litepod-8")) and "A10G" not in text
    one_sentence(text)
    text = refusal("aws", "RTX4090")
    assert "T4, A10G, L4, A100-40GB, A100-80GB or H100" in text and "v4-8" not in text


def test_a_tpu_on_aws_is_refused_naming_gcp_and_the_aws_gpus():
    for name in ("v5litepod-8", "v4-8", "v5p-8"):
        text = refusal("aws", name, region="us-east-1")
        assert "TPUs exist on gcp only" in text and "A10G" in text, text
        one_sentence(text)


def test_an_accelerator_of_the_other_cloud_names_the_closest_here():
    text = refusal("gcp", "A10G", zone="us-central1-a")
    assert "A10G is an aws accelerator" in text and "closest on gcp is L4" in text
    one_sentence(text)
    text = refusal("aws", "P100", region="us-east-1")
    assert "P100 is a gcp accelerator" in text and "closest on aws is T4" in text
    text = refusal("aws", "V100", region="us-east-1")
    assert "V100 is a gcp accelerator, not offered on aws" in text and "closest on aws is T4" in text
    one_sentence(text)


def test_a_count_the_machine_type_does_not_take_names_the_counts():
    text = refusal("gcp", "T4:3")
    assert "1, 2 or 4" in text and "T4:4" in text
    one_sentence(text)
    assert "1, 4 or 8" in refusal("aws", "A10G:2", region="us-east-1")
    assert "8 H100" in refusal("gcp", "H100:1")
    assert "1, 2, 4 or 8" in refusal("gcp", "V100:16")


def test_a_zone_that_does_not_offer_it_names_the_zones_that_do():
    text = refusal("gcp", "A100-80GB", zone="us-west1-b")
    assert "not offered in us-west1-b" in text
    assert "us-central1-a, us-central1-c, us-east4-c, us-east5-b, europe-west4-a or asia-southeast1-c" in text
    one_sentence(text)
    text = refusal("gcp", "v6e-8", region="asia-east1")
    assert "us-east5" in text and "europe-west4" in text


def test_a_malformed_zone_is_refused_with_the_right_form():
    text = refusal("gcp", "T4", zone="central-a")
    assert "not a zone name" in text and "us-central1-a" in text
    one_sentence(text)
    text = refusal("gcp", "V100", zone="us-central1")
    assert "is a region, not a zone" in text and "us-central1-a, us-central1-b, us-central1-c or us-central1-f" in text
    assert "write it like us-east-1a" in refusal("aws", "T4", region="us-east-1", zone="use1-az1")


def test_a_gcp_zone_outside_the_given_region_is_refused():
    assert "not in --region us-central1" in refusal("gcp", "T4", zone="us-east1-c", region="us-central1")


def test_aws_needs_a_region_and_its_zone_must_lie_in_it():
    text = refusal("aws", "A10G")
    assert "set AWS_REGION or pass --region" in text and "us-east-1" in text
    one_sentence(text)
    text = refusal("aws", "A10G", region="us-west-1")
    assert "not offered in us-west-1" in text and "us-west-2" in text
    text = refusal("aws", "A10G", region="us-east-1", zone="us-west-2a")
    assert "not in the region us-east-1" in text and "us-east-1a" in text
    assert "like us-east-1" in refusal("aws", "A10G", region="virginia")


def test_aws_zone_lists_are_enforced_where_the_catalog_has_them():
    data = json.loads(json.dumps(RAW))
    a10g = next(e for e in data["entries"] if e["cloud"] == "aws" and e["name"] == "A10G")
    a10g["zones"] = ["us-east-1a", "us-east-1b"]
    cat = Catalog.from_dict(data)
    assert cat.resolve("aws", "A10G", region="us-east-1", zone="us-east-1b").zone == "us-east-1b"
    with pytest.raises(BadInput, match="us-east-1a or us-east-1b"):
        cat.resolve("aws", "A10G", region="us-east-1", zone="us-east-1f")
    assert cat.resolve("aws", "A10G", region="us-west-2", zone="us-west-2c").zone == "us-west-2c"  # no list there


def test_spot_where_no_spot_price_is_known_is_refused_with_the_on_demand_price():
    text = refusal("aws", "H100:8", region="us-east-1", spot=True)
    assert "no spot price is known" in text and "leave out --spot" in text and "98.32" in text
    one_sentence(text)
    data = json.loads(json.dumps(RAW))
    next(e for e in data["entries"] if e["cloud"] == "gcp" and e["name"] == "L4")["machines"][0]["spot_usd_h"] = None
    with pytest.raises(BadInput, match=r"no spot price is known for L4:1 on gcp \(g2-standard-8\)"):
        Catalog.from_dict(data).resolve("gcp", "L4", spot=True)


def test_an_unknown_cloud_is_refused():
    assert "gcp or aws" in refusal("azure", "T4")


def test_places_lists_zones_on_gcp_regions_on_aws_and_never_raises():
    assert places("gcp", "A100-80GB") == (
        "us-central1-a", "us-central1-c", "us-east4-c", "us-east5-b", "europe-west4-a", "asia-southeast1-c",
    )
    assert places("gcp", "t4:2")[0] == "us-central1-a"
    assert places("aws", "A10G")[:2] == ("us-east-1", "us-east-2")
    assert places("aws", "v5litepod-8") == () and places("gcp", "nope") == () and places("gcp", "T4:x") == ()


# -- the table ----------------------------------------------------------------------------------------------------


def test_format_table_shows_every_accelerator_machine_and_the_price_note():
    table = format_table()
    for e in load().entries():
        assert re.search(rf"\b{re.escape(e.name)}\b", table), e.name
        for m in e.machines:
            assert m.machine_type in table
    assert "gcp prices:" in table and "aws prices:" in table
    assert "https://cloud.google.com/compute/gpus-pricing" in table and "not fetched live" in table
    assert re.search(r"as of \d{4}-\d{2}-\d{2}", table)
    assert "32.77" in table and "n1-standard-8 + nvidia-tesla-t4" in table


def test_format_table_for_one_cloud():
    table = format_table("aws")
    assert "A10G" in table and "v5litepod" not in table and "gcp prices" not in table
    with pytest.raises(BadInput, match="gcp or aws"):
        format_table("azure")


def test_fallback_zones_start_in_the_same_region_and_never_repeat_the_zone():
    from infra.catalog import fallback_zones, places

    zones = fallback_zones("T4", "us-central1-a")
    assert "us-central1-a" not in zones
    assert len(zones) == len(set(zones)) <= 6
    same = [z for z in places("gcp", "T4") if z.startswith("us-central1-") and z != "us-central1-a"]
    assert zones[: len(same)] == same[:6]  # the region's other zones first
    assert all(z in places("gcp", "T4") for z in zones)
    assert len(fallback_zones("T4", "us-central1-a", most=50)) == len(places("gcp", "T4")) - 1

