"""The unit code scheme: the national division code, extended down to buildings.

Codes are decimal strings whose prefix is the parent's code, so the whole chain can be
read off a code and a subtree is a prefix range (B-tree friendly):

==========  ======  ===========================================================
level       digits  made of
==========  ======  ===========================================================
district    6       national county-level division code (GB/T 2260), 410105 金水区
subdistrict 9       + 3: subdistrict/town, as in the statistical division code (001–999)
community   12      + 3: community/village committee (001–999)
grid        14      + 2: unit grid within the community (01–99), GB/T 30428.1 (14 digits)
building    17      + 3: building within the grid (001–999), our extension for 楼栋
==========  ======  ===========================================================

e.g. 41010500100302015 = 金水区 / subdistrict 001 / community 003 / grid 02 / building 015.
A segment of all zeros is not a valid child number (zero means "not subdivided").
"""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    district = "district"
    subdistrict = "subdistrict"
    community = "community"
    grid = "grid"
    building = "building"


LEVELS: tuple[Level, ...] = tuple(Level)
CODE_LENGTH: dict[Level, int] = {
    Level.district: 6,
    Level.subdistrict: 9,
    Level.community: 12,
    Level.grid: 14,
    Level.building: 17,
}
LEVEL_NAMES_ZH: dict[Level, str] = {
    Level.district: "区",
    Level.subdistrict: "街道",
    Level.community: "社区",
    Level.grid: "网格",
    Level.building: "楼栋",
}
# Levels a case can be handled at and counted by (buildings hold no jurisdiction), the
# lowest first: escalation (上报) walks this list upwards.
HANDLING_LEVELS: tuple[Level, ...] = (
    Level.grid,
    Level.community,
    Level.subdistrict,
    Level.district,
)
_BY_LENGTH = {n: lvl for lvl, n in CODE_LENGTH.items()}


def level_pattern(levels: tuple[Level, ...] | list[str] = LEVELS) -> str:
    """A regular expression matching exactly these level names (for Query(pattern=…))."""
    return "^(" + "|".join(str(lvl) for lvl in levels) + ")$"


class CodeError(ValueError):
    """A code that does not follow the scheme; the message says which rule it breaks."""


def depth(level: Level | str) -> int:
    return LEVELS.index(Level(level))


def parent_level(level: Level | str) -> Level | None:
    i = depth(level)
    return LEVELS[i - 1] if i > 0 else None


def child_level(level: Level | str) -> Level | None:
    i = depth(level)
    return LEVELS[i + 1] if i + 1 < len(LEVELS) else None


def level_of(code: str) -> Level:
    """The level a well-formed code belongs to, from its length."""
    validate(code)
    return _BY_LENGTH[len(code)]


def parent_of(code: str) -> str | None:
    lvl = level_of(code)
    up = parent_level(lvl)
    return code[: CODE_LENGTH[up]] if up else None


def district_of(code: str) -> str:
    """The county-level division (GB/T 2260) a unit code lies in: its first
    ``CODE_LENGTH[Level.district]`` digits. The distribution key of a province's database
    (gis_service/db/distribution.py); its SQL twin is ``district_of()`` (migration
    0020_district_keys, made from the same length)."""
    return code[: CODE_LENGTH[Level.district]]


def ancestors(code: str) -> list[str]:
    """The codes of every ancestor, top first (the district first)."""
    lvl = level_of(code)
    return [code[: CODE_LENGTH[LEVELS[i]]] for i in range(depth(lvl))]


def validate(code: str, level: Level | str | None = None) -> str:
    """Return ``code`` if it follows the scheme (for ``level``, if given); else CodeError."""
    if not isinstance(code, str) or not code:
        raise CodeError("code is empty")
    if not code.isascii() or not code.isdigit():
        raise CodeError(f"code {code!r} must contain only digits 0-9")
    if len(code) not in _BY_LENGTH:
        lengths = ", ".join(f"{lvl.value} {n}" for lvl, n in CODE_LENGTH.items())
        raise CodeError(f"code {code!r} has {len(code)} digits; expected one of: {lengths}")
    actual = _BY_LENGTH[len(code)]
    if level is not None and actual is not Level(level):
        raise CodeError(
            f"code {code!r} has {len(code)} digits, which is a {actual.value} code, "
            f"not a {Level(level).value} code ({CODE_LENGTH[Level(level)]} digits)"
        )
    if code[:2] == "00" or code[2:6] == "0000":
        raise CodeError(f"code {code!r} does not start with a valid county-level division code")
    start = 6
    for lvl in LEVELS[1 : depth(actual) + 1]:
        end = CODE_LENGTH[lvl]
        if set(code[start:end]) == {"0"}:
            segment = code[start:end]
            raise CodeError(f"code {code!r}: the {lvl.value} segment {segment} is all zeros")
        start = end
    return code


def child_code(parent: str, number: int) -> str:
    """The code of the ``number``-th child (1-based) of ``parent``."""
    lvl = child_level(level_of(parent))
    if lvl is None:
        raise CodeError(f"a building ({parent}) has no children")
    width = CODE_LENGTH[lvl] - len(parent)
    if not 1 <= number < 10**width:
        raise CodeError(f"child number {number} does not fit {width} digits under {parent}")
    return f"{parent}{number:0{width}d}"
