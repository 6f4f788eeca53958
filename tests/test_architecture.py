"""The folder tree is the architecture: every module belongs to a layer of the import-linter contract
(which `lint-imports` enforces in the test script), and the README's package map names each package."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import amms_cli

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(amms_cli.__file__).resolve().parent
TOP_LEVEL_ALLOWED = {"__init__", "__main__", "errors", "version"}


def contract_layers() -> list[str]:
    """Every module or package named by a layer of the `layers` contract."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(contract["layers"] for contract in contracts if contract["type"] == "layers")
    return [name.strip() for layer in layers for name in re.split(r"[|:]", layer)]


def modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_module_is_in_a_layer_of_the_contract() -> None:
    layers = contract_layers()
    outside = [
        name
        for name in modules()
        if name != "amms_cli" and not any(name == layer or name.startswith(layer + ".") for layer in layers)
    ]
    assert outside == []


def test_only_the_public_entry_points_and_the_error_tree_stay_at_the_top() -> None:
    top = {path.stem for path in PACKAGE.glob("*.py")}
    assert top <= TOP_LEVEL_ALLOWED


def test_the_readme_map_names_every_package() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Architecture") :]
    packages = sorted(path.parent.name for path in PACKAGE.glob("*/__init__.py"))
    assert packages, "no packages found"
    missing = [name for name in packages if not re.search(rf"^\s*{name}/", section, re.MULTILINE)]
    assert missing == []
