"""The code scheme: national division code + GB/T 30428 unit-grid segments + buildings."""

import pytest

from gis_service.units import codes
from gis_service.units.codes import Level


def test_levels_follow_the_digits():
    assert codes.level_of("410105") is Level.district
    assert codes.level_of("410105001") is Level.subdistrict
    assert codes.level_of("410105001003") is Level.community
    assert codes.level_of("41010500100302") is Level.grid  # GB/T 30428: 14 digits
    assert codes.level_of("41010500100302015") is Level.building


def test_chain_is_read_off_the_code():
    assert codes.parent_of("41010500100302015") == "41010500100302"
    assert codes.parent_of("410105") is None
    assert codes.ancestors("41010500100302015") == [
        "410105",
        "410105001",
        "410105001003",
        "41010500100302",
    ]


def test_child_codes_are_zero_padded_and_bounded():
    assert codes.child_code("410105", 7) == "410105007"
    assert codes.child_code("410105001003", 2) == "41010500100302"
    with pytest.raises(codes.CodeError, match="does not fit 2 digits"):
        codes.child_code("410105001003", 100)
    with pytest.raises(codes.CodeError, match="no children"):
        codes.child_code("41010500100302015", 1)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("", "empty"),
        ("41010A", "only digits"),
        ("4101051", "has 7 digits"),
        ("000105", "county-level"),
        ("410105000", "all zeros"),
        ("41010500100300", "grid segment 00 is all zeros"),
    ],
)
def test_malformed_codes_say_what_is_wrong(code, message):
    with pytest.raises(codes.CodeError, match=message):
        codes.validate(code)


def test_validate_checks_the_level():
    with pytest.raises(codes.CodeError, match="not a grid code"):
        codes.validate("410105001", Level.grid)
    assert codes.validate("41010500100302", "grid") == "41010500100302"
