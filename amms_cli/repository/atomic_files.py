"""Writing files so that no reader ever sees half of one: atomic writes, folders filled under a hidden
name and renamed into place, and locks that serialise writers (dropped by the kernel if one dies)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from amms_cli.errors import PublishError

STAGING_PREFIX = ".amms-staging-"
LOCK_NAME = ".amms.lock"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` beside `path` under a hidden name, fsync it, then rename it over `path`."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def new_staging_dir(parent: Path, label: str) -> Path:
    """A hidden folder in `parent` to fill before it is renamed into place (same filesystem)."""
    staging = parent / f"{STAGING_PREFIX}{label}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    return staging


def publish_dir(staging: Path, final: Path) -> None:
    """Rename a filled staging folder to its final name; never replaces an existing folder."""
    if final.exists():
        shutil.rmtree(staging, ignore_errors=True)
        raise PublishError(f"{final} already exists", hint="choose another version number")
    fsync_tree(staging)
    os.rename(staging, final)
    fsync_dir(final.parent)


def fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    fsync_dir(folder)


def folder_lock(folder: Path) -> contextlib.AbstractContextManager[None]:
    """Serialise writers of one model folder (two concurrent bump-versions must not race)."""
    return file_lock(folder / LOCK_NAME)


@contextlib.contextmanager
def file_lock(lock_path: Path) -> Iterator[None]:
    """An exclusive lock on `lock_path` (created if missing); the kernel drops it if the process dies."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
