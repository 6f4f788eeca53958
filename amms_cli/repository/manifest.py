"""`amms-version.json`: what a version folder holds and how it was made. A version folder is
complete only when this file exists; its checksums are verified before anything is loaded."""

from __future__ import annotations

import hashlib
import io
import os
import queue
import stat
import time
from datetime import datetime
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from amms_cli.errors import ChecksumMismatch, RepositoryError
from amms_cli.repository import atomic_files

MANIFEST_NAME = "amms-version.json"
PREDICT = "predict"  # the output every model has
PREDICT_PROBA = "predict_proba"  # the class probabilities, when the model gives them
FORMAT_VERSION = 1
_CHUNK = 1 << 20
_HASH_BUFFERS: queue.SimpleQueue[bytearray] = queue.SimpleQueue()  # see _sha256_of
# files whose checksum matched in this process: (device, inode) -> (size, mtime_ns, ctime_ns, sha256)
_VERIFIED: dict[tuple[int, int], tuple[int, int, int, str]] = {}
_VERIFIED_AT_MOST = 100_000  # files remembered; past that the memory starts again
_SETTLED_NS = 2 * 10**9  # a file changed more recently than this is hashed at every load (see _verify_file)


class Artifact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


ColumnType = Literal["int", "float", "bool", "string", "category", "datetime", "any"]


class ColumnInfo(BaseModel):
    """One named input column of a model that takes a table (the `dataframe` servable)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: ColumnType  # the JSON values it takes; "any": a scalar of any kind (the model did not say)
    dtype: str | None = None  # the pandas dtype the model saw at fit time, when known (e.g. "str", "category")
    nullable: bool = False  # null (a missing value) is accepted; the model decides what it means
    levels: list[Any] | None = None  # a category's known values
    closed: bool = False  # a value outside `levels` is refused (the model would raise on it)


class InputInfo(BaseModel):
    """What is known of the model's input, recorded at publish time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_features_in: int | None = None
    feature_names_in: list[str] | None = None
    columns: list[ColumnInfo] | None = None  # named, typed columns (the `dataframe` servable)
    allows_missing: bool = False  # rows of numbers may hold null (NaN): the model imputes or accepts it
    row_independent: bool = False  # each row's prediction depends on that row only: requests can be batched
    classes: list[Any] | None = None
    shape: list[int | None] | None = None  # ndarray models: per-row shape, None = any size
    dtype: str | None = None
    example: Any = None
    # True: the publisher's example (or rows of the data given with it); it is the smoke check run at
    # every load. Manifests written before amms recorded only real examples may hold a synthesized one
    # with False, which is never run.
    example_given: bool = False
    has_predict_proba: bool = False

    @property
    def smoke_example(self) -> Any:
        """The example every load is checked with: only one the publisher gave (None: no smoke check)."""
        return self.example if self.example_given else None


class OutputInfo(BaseModel):
    """An output as a real prediction of the example returned it (the v2 datatype, -1 for the batch)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    datatype: str
    shape: list[int]


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int = FORMAT_VERSION
    model_name: str
    version: str
    created_at: datetime
    loader: str  # key into amms_cli.loaders.LOADERS: pickle, cloudpickle, joblib, onnx, custom
    framework: str  # e.g. scikit-learn, xgboost, onnx, custom
    model_class: str | None = None
    servable_name: str
    artifacts: list[Artifact]
    entrypoint: str  # the artifact the loader opens (a file name, or "." for a custom model folder)
    python_version: str
    requirements: dict[str, str] = Field(default_factory=dict)  # distribution -> version it was saved with
    # installed modules opening the artifact imports, found by the trial load: the server imports them
    # before it measures a load, so a version's memory is its own, not its libraries' (empty in
    # manifests written before amms recorded them)
    imports: list[str] = Field(default_factory=list)
    trusted_types: list[str] = Field(default_factory=list)  # skops: types the publisher trusted (--trust)
    input: InputInfo = Field(default_factory=InputInfo)
    outputs: dict[str, OutputInfo] = Field(default_factory=dict)  # "predict", "predict_proba"; {} = unknown

    @property
    def artifacts_bytes(self) -> int:
        """The size of its files together (what a load takes in memory at least)."""
        return sum(artifact.size for artifact in self.artifacts)

    @cached_property
    def fingerprint(self) -> str:
        """Every field as compact JSON, made once per manifest read (the model cache compares it at
        each load, ~50 us to make): with the checksums verified, the same fingerprint means the same
        files described the same way."""
        return self.model_dump_json()

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


def sha256_file(path: Path) -> str:
    with path.open("rb", buffering=0) as handle:
        return _sha256_of(handle)


def _sha256_of(handle: io.FileIO) -> str:
    """Read through a 1 MiB buffer kept for the next call: a new buffer per chunk is a new memory
    mapping, filled page by page and then returned, which cost the system as much time as the hashing
    did when the model cache verifies a hundred versions a second (1.2 of 2.5 ms per 2 MiB file)."""
    try:
        buffer = _HASH_BUFFERS.get_nowait()
    except queue.Empty:
        buffer = bytearray(_CHUNK)
    digest = hashlib.sha256()
    try:
        with memoryview(buffer) as view:
            while count := handle.readinto(view):
                digest.update(view[:count])
    finally:
        _HASH_BUFFERS.put(buffer)
    return digest.hexdigest()


def read_manifest(version_dir: Path) -> Manifest:
    path = version_dir / MANIFEST_NAME
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise RepositoryError(f"{version_dir.name}: no {MANIFEST_NAME} (incomplete version)") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise RepositoryError(f"{version_dir.name}: invalid {MANIFEST_NAME}: {where}: {first['msg']}") from None
    except OSError as exc:
        raise RepositoryError(f"{version_dir.name}: cannot read {MANIFEST_NAME}: {exc}") from None


def write_manifest(version_dir: Path, manifest: Manifest) -> None:
    atomic_files.atomic_write_text(version_dir / MANIFEST_NAME, manifest.to_json())


def describe_artifacts(folder: Path) -> list[Artifact]:
    """Checksums of every regular file under `folder` except the manifest, by relative path."""
    artifacts = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if relative == MANIFEST_NAME or "__pycache__" in path.parts or not path.is_file():
            continue
        artifacts.append(Artifact(name=relative, sha256=sha256_file(path), size=path.stat().st_size))
    return artifacts


def verify_artifacts(version_dir: Path, manifest: Manifest) -> None:
    """Raise ChecksumMismatch unless every recorded artifact is inside the folder, a regular file
    (not a symlink, nor under one), and has its recorded size and sha256.

    Without resolving paths (the model cache verifies a hundred versions a second): a name that is
    relative, has no `..` and crosses no symlink stays inside the folder. Each file is opened once,
    refusing a symlink (O_NOFOLLOW), and its type, size and checksum come from that one descriptor;
    its checksum is computed again only when the file has changed since it last matched (_verify_file)."""
    for artifact in manifest.artifacts:
        name = PurePosixPath(artifact.name)
        if name.is_absolute() or ".." in name.parts or not name.parts:
            raise ChecksumMismatch(f"{version_dir.name}: manifest names '{artifact.name}' outside its folder")
        for depth in range(1, len(name.parts)):
            if (version_dir / Path(*name.parts[:depth])).is_symlink():
                raise ChecksumMismatch(f"{version_dir.name}: manifest names '{artifact.name}' outside its folder")
        _verify_file(version_dir, artifact)


def _verify_file(version_dir: Path, artifact: Artifact) -> None:
    """A file whose checksum already matched in this process is not hashed again while the system
    says it has not changed since: same device, inode, size, modification and change times (every
    write and every `touch` sets the change time to now, and no user can set it back). As with git's
    index, a file changed within the last `_SETTLED_NS` is not remembered: the system's clock for file
    times ticks every few milliseconds, so a second write in the same tick would keep the times."""
    path = version_dir / artifact.name
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ChecksumMismatch(f"{version_dir.name}: artifact '{artifact.name}' is missing") from None
    except OSError:
        if path.is_symlink():  # O_NOFOLLOW's ELOOP
            raise ChecksumMismatch(f"{version_dir.name}: '{artifact.name}' is a symlink; refusing to load it") from None
        raise ChecksumMismatch(f"{version_dir.name}: artifact '{artifact.name}' cannot be read") from None
    with open(descriptor, "rb", buffering=0) as handle:
        facts = os.fstat(descriptor)
        if not stat.S_ISREG(facts.st_mode):
            raise ChecksumMismatch(f"{version_dir.name}: artifact '{artifact.name}' is missing (not a file)")
        if facts.st_size != artifact.size:
            raise ChecksumMismatch(
                f"{version_dir.name}: '{artifact.name}' has {facts.st_size} bytes, "
                f"recorded {artifact.size} (tampered or truncated)"
            )
        identity = (facts.st_dev, facts.st_ino)
        unchanged = (facts.st_size, facts.st_mtime_ns, facts.st_ctime_ns, artifact.sha256)
        if _VERIFIED.get(identity) == unchanged:
            return
        if _sha256_of(handle) != artifact.sha256:
            raise ChecksumMismatch(f"{version_dir.name}: checksum mismatch for '{artifact.name}'")
    if time.time_ns() - facts.st_ctime_ns > _SETTLED_NS:
        if len(_VERIFIED) >= _VERIFIED_AT_MOST:
            _VERIFIED.clear()
        _VERIFIED[identity] = unchanged
