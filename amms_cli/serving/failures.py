"""Versions that failed to load, remembered until their folder is published again (or an admin asks
for a new try), so a broken version is not retried on every pass."""

from __future__ import annotations

from dataclasses import dataclass

from amms_cli.repository.manifest import MANIFEST_NAME
from amms_cli.repository.scan import ModelOnDisk, VersionOnDisk
from amms_cli.repository.versions import Version

Fingerprint = tuple[int, int]


def fingerprint(item: VersionOnDisk) -> Fingerprint:
    """Identifies one publication of a version folder (its manifest's inode and mtime)."""
    try:
        stat = (item.path / MANIFEST_NAME).stat()
    except OSError:
        return (0, 0)
    return (stat.st_ino, stat.st_mtime_ns)


@dataclass(frozen=True)
class Failure:
    publication: Fingerprint
    reason: str


class FailureMemory:
    def __init__(self) -> None:
        self._failures: dict[tuple[str, Version], Failure] = {}

    def remember(self, name: str, item: VersionOnDisk, reason: str) -> None:
        self._failures[(name, item.version)] = Failure(fingerprint(item), reason)

    def reason(self, name: str, item: VersionOnDisk) -> str | None:
        """Why this publication of the version failed; None when it did not (or was published again)."""
        failure = self._failures.get((name, item.version))
        if failure is None or failure.publication != fingerprint(item):
            return None
        return failure.reason

    def failed_versions(self, name: str, on_disk: ModelOnDisk) -> frozenset[Version]:
        return frozenset(item.version for item in on_disk.versions if self.reason(name, item) is not None)

    def forget(self, name: str) -> None:
        for key in [key for key in self._failures if key[0] == name]:
            del self._failures[key]
