"""Semantic versions of a model (MAJOR.MINOR.PATCH) and the aspired-version patterns that pick one."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from amms_cli.errors import VersionSyntaxError

# [0-9] because \d also matches other scripts' digits; callers use fullmatch because `$` allows a final "\n"
_NUMBER = r"(0|[1-9][0-9]{0,8})"
_VERSION_RE = re.compile(rf"{_NUMBER}\.{_NUMBER}\.{_NUMBER}")
_PATTERN_RE = re.compile(rf"{_NUMBER}(?:\.{_NUMBER})?\.x")
PATTERN_HELP = "use 1.x, 1.2.x, 1.2.3 or latest"

BumpPart = Literal["major", "minor", "patch"]


@dataclass(frozen=True, order=True, slots=True)
class Version:
    """A MAJOR.MINOR.PATCH version; ordering is numeric, so 1.10.0 > 1.9.0."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _VERSION_RE.fullmatch(text)
        if match is None:
            raise VersionSyntaxError(f"{text!r} is not a version (expected MAJOR.MINOR.PATCH, e.g. 1.0.0)")
        return cls(int(match[1]), int(match[2]), int(match[3]))

    @classmethod
    def is_valid(cls, text: str) -> bool:
        return _VERSION_RE.fullmatch(text) is not None

    def bump(self, part: BumpPart) -> Version:
        if part == "major":
            return Version(self.major + 1, 0, 0)
        if part == "minor":
            return Version(self.major, self.minor + 1, 0)
        return Version(self.major, self.minor, self.patch + 1)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True, slots=True)
class VersionPattern:
    """Which versions an entry aspires to serve: `latest`, `1.x`, `1.2.x` or exactly `1.2.3`."""

    text: str
    major: int | None = None
    minor: int | None = None
    exact: Version | None = None

    @classmethod
    def parse(cls, text: str) -> VersionPattern:
        if text == "latest":
            return cls(text)
        if Version.is_valid(text):
            return cls(text, exact=Version.parse(text))
        match = _PATTERN_RE.fullmatch(text)
        if match is None:
            raise VersionSyntaxError(f"{text!r} is not a version pattern ({PATTERN_HELP})")
        minor = int(match[2]) if match[2] is not None else None
        return cls(text, major=int(match[1]), minor=minor)

    def matches(self, version: Version) -> bool:
        if self.exact is not None:
            return version == self.exact
        if self.major is not None and version.major != self.major:
            return False
        return self.minor is None or version.minor == self.minor

    def newest(self, versions: Iterable[Version]) -> Version | None:
        """The highest matching version, or None when nothing matches."""
        matching = [v for v in versions if self.matches(v)]
        return max(matching) if matching else None

    def __str__(self) -> str:
        return self.text
