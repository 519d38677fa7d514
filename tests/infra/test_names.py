import pytest

from infra.errors import BadInput
from infra.names import MAX_RUN_ID, check_run_id, run_id, suggest


def test_run_id_joins_code_and_dataset():
    assert run_id("yolo", "beer-v2") == "yolo-beer-v2"


@pytest.mark.parametrize("bad", ["My_Code", "9lives", "ends-", "double--hyphen", "spa ce", "ünï"])
def test_invalid_names_are_refused_with_a_suggestion(bad):
    with pytest.raises(BadInput) as e:
        run_id(bad, "data")
    text = str(e.value)
    assert repr(bad) in text and "lowercase letters" in text
    assert "e.g." in text


def test_suggestion_is_itself_valid():
    for name in ["My_Code", "9lives", "ResNet 50!", "---"]:
        assert run_id(suggest(name), "d")


def test_run_id_length_is_bounded_for_cloud_resource_names():
    with pytest.raises(BadInput, match="characters long"):
        run_id("a" * 24, "b" * 24)
    assert len(run_id("a" * 20, "b" * 19)) == MAX_RUN_ID


def test_run_id_from_command_line_is_checked():
    assert check_run_id("digits-sklearn-digits") == "digits-sklearn-digits"
    with pytest.raises(BadInput, match="trainrig ls"):
        check_run_id("../etc")
