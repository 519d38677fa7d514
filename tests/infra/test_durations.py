import pytest

from infra.durations import format_duration, parse_duration
from infra.errors import BadInput


@pytest.mark.parametrize("text,seconds", [("90", 90), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("1d", 86400)])
def test_durations(text, seconds):
    assert parse_duration(text, "x") == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "m5", "0", "1h 30m"])
def test_bad_durations_name_the_option(text):
    with pytest.raises(BadInput, match="--max-runtime"):
        parse_duration(text, "--max-runtime")


def test_format():
    assert format_duration(5) == "5s" and format_duration(125) == "2m05s" and format_duration(7260) == "2h01m"
