"""The amms that runs `amms build`, as a wheel for the image: built from the source tree when amms runs
from a checkout (an editable install or PYTHONPATH), otherwise repacked from the installed
distribution's own files, as its RECORD lists and hashes them. Never fetched from a registry, so the
image runs exactly the amms (version and code) that built it."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from importlib.util import find_spec
from pathlib import Path

from amms_cli.errors import EngineError

DISTRIBUTION = "amms_cli"
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # amms_cli/, the package running now
# written by the installer about this one install, not part of the distribution
_INSTALL_ONLY = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}


@dataclass(frozen=True)
class Wheel:
    path: Path
    requires: tuple[str, ...]  # Requires-Dist lines of its metadata


def source_checkout() -> Path | None:
    """The source tree amms runs from (the folder with its pyproject.toml), or None when it runs from
    an installed wheel."""
    root = PACKAGE_DIR.parent
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return None
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except tomllib.TOMLDecodeError:
        return None
    return root if project.get("name") == DISTRIBUTION else None


def amms_wheel(destination: Path) -> Wheel:
    """The running amms as a wheel in `destination`: built from its checkout, or repacked from its
    installed files."""
    checkout = source_checkout()
    return build_wheel(checkout, destination) if checkout is not None else repack_installed(destination)


def build_wheel(source: Path, destination: Path) -> Wheel:
    """`pip wheel --no-deps` of an amms source tree into `destination`."""
    destination.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(destination)]
    if find_spec("hatchling") is not None:
        command.append("--no-build-isolation")  # the build backend is already here; skip fetching it
    result = subprocess.run([*command, str(source)], capture_output=True, text=True, check=False)
    wheels = sorted(destination.glob(f"{DISTRIBUTION}-*.whl"))
    if result.returncode != 0 or not wheels:
        last = (result.stderr.strip().splitlines() or ["no wheel was written"])[-1]
        raise EngineError(f"could not build the amms wheel from {source}: {last}")
    return Wheel(wheels[-1], requires_dist(wheels[-1]))


def repack_installed(destination: Path) -> Wheel:
    """Zip the installed distribution's files (as its RECORD lists them, each checked against the hash
    recorded at install) into a wheel with a fresh RECORD."""
    dist = _running_distribution()
    files = [item for item in dist.files or () if _belongs_to_wheel(item)]
    if not files:
        raise EngineError(f"the installed {DISTRIBUTION} lists no files in its RECORD", hint="reinstall amms")
    dist_info = next(str(item.parent) for item in files if item.name == "METADATA")
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / f"{DISTRIBUTION}-{dist.version}-py3-none-any.whl"
    record_lines = []
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for item in files:
            data = Path(str(dist.locate_file(item))).read_bytes()
            digest = _record_hash(data)
            if item.hash is not None and f"{item.hash.mode}={item.hash.value}" != digest:
                target.unlink()
                raise EngineError(
                    f"{item} of the installed amms differs from what was installed (its RECORD hash)",
                    hint="reinstall amms, or run amms from a checkout to build from your changes",
                )
            archive.writestr(str(item), data)
            record_lines.append(f"{item},{digest},{len(data)}")
        record_lines.append(f"{dist_info}/RECORD,,")
        archive.writestr(f"{dist_info}/RECORD", "\n".join(record_lines) + "\n")
    return Wheel(target, requires_dist(target))


def _running_distribution() -> importlib.metadata.Distribution:
    """The installed distribution whose files are the amms running now (not another copy on the path)."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise EngineError(
            f"amms runs from {PACKAGE_DIR} but no installed {DISTRIBUTION} distribution "
            "describes it, so there is nothing to put in the image",
            hint="install amms with pip (pip install amms_cli-*.whl, or pip install -e CHECKOUT)",
        ) from None
    ours = PACKAGE_DIR / "__init__.py"
    if Path(str(dist.locate_file(f"{DISTRIBUTION}/__init__.py"))).resolve() != ours:
        raise EngineError(
            f"the installed {DISTRIBUTION} {dist.version} at {dist.locate_file('')} is not the amms running "
            f"from {ours.parent}",
            hint="run amms from the environment it is installed in",
        )
    return dist


def _belongs_to_wheel(item: importlib.metadata.PackagePath) -> bool:
    parts = item.parts
    if parts[0] == ".." or "__pycache__" in parts or item.suffix == ".pyc":
        return False  # console scripts (bin/amms) are recreated by pip; bytecode is the installer's
    return not (parts[0].endswith(".dist-info") and item.name in _INSTALL_ONLY)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
    return f"sha256={digest}"


def requires_dist(wheel: Path) -> tuple[str, ...]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = HeaderParser().parsestr(archive.read(name).decode("utf-8"))
    return tuple(metadata.get_all("Requires-Dist") or ())
