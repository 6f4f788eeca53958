"""Version (semantic order) and VersionPattern (1.x, 1.2.x, 1.2.3, latest): examples and properties."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from amms_cli.errors import VersionSyntaxError
from amms_cli.repository.versions import Version, VersionPattern

numbers = st.integers(min_value=0, max_value=999_999_999)
versions = st.builds(Version, numbers, numbers, numbers)
# near misses: canonical text with something around it, and digits of other scripts (\d in from_regex)
affixes = st.sampled_from(["", " ", "\n", "v", "0", ".0", "\u0661", "x"]) | st.text(max_size=2)


def near(texts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(lambda text, before, after: f"{before}{text}{after}", texts, affixes, affixes)


version_like = st.text() | near(versions.map(str)) | st.from_regex(r"[1-9]\d{0,2}\.\d{1,3}\.\d{1,3}", fullmatch=True)
pattern_like = (
    st.text(max_size=12)
    | near(st.sampled_from(["1.x", "1.2.x", "1.2.3", "latest"]))
    | st.from_regex(r"[1-9]\d{0,2}(\.\d{1,3})?\.x", fullmatch=True)
)
CANONICAL_VERSION = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")


def render(pattern: VersionPattern) -> str:
    """The text a pattern stands for, rebuilt from its parsed parts only."""
    if pattern.exact is not None:
        return str(pattern.exact)
    if pattern.major is None:
        return "latest"
    return f"{pattern.major}.x" if pattern.minor is None else f"{pattern.major}.{pattern.minor}.x"


def test_parse_and_str() -> None:
    assert Version.parse("1.10.3") == Version(1, 10, 3)
    assert str(Version(1, 10, 3)) == "1.10.3"


def test_order_is_numeric_not_textual() -> None:
    assert Version.parse("1.10.0") > Version.parse("1.9.0")
    assert max(Version.parse(t) for t in ["1.9.0", "1.10.0", "1.2.30"]) == Version(1, 10, 0)
    assert sorted(["1.10.0", "1.9.0", "0.20.1"], key=Version.parse) == ["0.20.1", "1.9.0", "1.10.0"]


@pytest.mark.parametrize(("part", "expected"), [("patch", "1.0.4"), ("minor", "1.1.0"), ("major", "2.0.0")], ids=str)
def test_bump(part: str, expected: str) -> None:
    assert str(Version.parse("1.0.3").bump(part)) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text", ["", "1", "1.0", "1.0.0.0", "v1.0.0", "01.0.0", "1.00.0", "1.0.-1", "1.0.0 ", " 1.0.0", "1.0.0\n", "1.x"]
)
def test_not_a_version(text: str) -> None:
    with pytest.raises(VersionSyntaxError, match="is not a version"):
        Version.parse(text)
    assert not Version.is_valid(text)


def test_digits_of_other_scripts_are_not_version_numbers() -> None:
    assert not Version.is_valid("1.1\u0661.0")  # ARABIC-INDIC DIGIT ONE would otherwise read as 11
    with pytest.raises(VersionSyntaxError):
        VersionPattern.parse("\u0661.x")


@pytest.mark.parametrize(
    ("text", "picked"),
    [("latest", "2.0.0"), ("1.x", "1.10.0"), ("1.2.x", "1.2.5"), ("1.2.3", "1.2.3"), ("0.x", None), ("3.x", None)],
)
def test_pattern_picks_the_newest_match(text: str, picked: str | None) -> None:
    on_disk = [Version.parse(v) for v in ["1.2.3", "1.9.0", "1.2.5", "2.0.0", "1.10.0", "1.0.0"]]
    newest = VersionPattern.parse(text).newest(on_disk)
    assert (str(newest) if newest else None) == picked


@pytest.mark.parametrize("text", ["1.y", "x", "1.x.x", "1.2.3.x", "Latest", "*", "1.*", "^1.2", "1.2.x\n", ""])
def test_not_a_pattern(text: str) -> None:
    with pytest.raises(VersionSyntaxError) as caught:
        VersionPattern.parse(text)
    assert caught.value.message == f"{text!r} is not a version pattern (use 1.x, 1.2.x, 1.2.3 or latest)"


@given(versions)
def test_version_round_trips(version: Version) -> None:
    assert Version.parse(str(version)) == version


@given(versions, versions)
def test_order_equals_tuple_order(a: Version, b: Version) -> None:
    as_tuple = (a.major, a.minor, a.patch), (b.major, b.minor, b.patch)
    assert (a < b) == (as_tuple[0] < as_tuple[1])
    assert (a == b) == (as_tuple[0] == as_tuple[1])


@given(version_like)
def test_text_parses_only_when_canonical(text: str) -> None:
    """Garbage never parses: whatever parses prints back as exactly the text it came from."""
    try:
        version = Version.parse(text)
    except VersionSyntaxError:
        assert not Version.is_valid(text)
        return
    assert str(version) == text
    assert CANONICAL_VERSION.fullmatch(text)


@given(pattern_like)
def test_garbage_never_parses_as_a_pattern(text: str) -> None:
    try:
        pattern = VersionPattern.parse(text)
    except VersionSyntaxError:
        return
    assert render(pattern) == text


@given(numbers, st.none() | numbers, versions)
def test_pattern_round_trip_and_match(major: int, minor: int | None, version: Version) -> None:
    text = f"{major}.x" if minor is None else f"{major}.{minor}.x"
    pattern = VersionPattern.parse(text)
    assert render(pattern) == text
    expected = version.major == major and (minor is None or version.minor == minor)
    assert pattern.matches(version) == expected


@given(st.lists(versions, max_size=20), versions)
def test_newest_is_the_max_of_the_matches(on_disk: list[Version], exact: Version) -> None:
    assume(on_disk)
    assert VersionPattern.parse("latest").newest(on_disk) == max(on_disk)
    assert VersionPattern.parse(str(exact)).newest(on_disk) == (exact if exact in on_disk else None)
    major = on_disk[0].major
    assert VersionPattern.parse(f"{major}.x").newest(on_disk) == max(v for v in on_disk if v.major == major)
