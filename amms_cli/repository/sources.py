"""Where a model's versions live (`load_type` + `load_url`). A lookup table keeps it pluggable:
a new type (HTTP, S3) adds one class that makes the versions available in a local folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class ModelSource(Protocol):
    """Makes a model's version folders available on the local filesystem."""

    def model_dir(self, model_name: str) -> Path: ...

    def watch_root(self) -> Path: ...


@dataclass(frozen=True)
class ShareSource:
    """A folder on a local or mounted filesystem; relative URLs resolve against the config's folder."""

    root: Path

    @classmethod
    def from_url(cls, load_url: str, base_dir: Path) -> ShareSource:
        root = Path(load_url).expanduser()
        return cls(root if root.is_absolute() else (base_dir / root))

    def model_dir(self, model_name: str) -> Path:
        return self.root / model_name

    def watch_root(self) -> Path:
        return self.root


SOURCE_TYPES = {"SHARE": ShareSource.from_url}


def open_source(load_type: str, load_url: str, base_dir: Path) -> ModelSource:
    return SOURCE_TYPES[load_type](load_url, base_dir)
