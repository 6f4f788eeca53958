"""skops files (`skops.io.dump(model, "m.skops")`), scikit-learn's recommended safe format, the extra
`amms_cli[skops]`. skops rebuilds only the types it trusts (scikit-learn, numpy, scipy): any other type
in the file is refused with its name, unless the publisher listed it with `--trust TYPE,...`
(recorded in the manifest). Loading runs no code beyond those trusted types."""

from __future__ import annotations

import zipfile
from pathlib import Path

from amms_cli.errors import ModelLoadError
from amms_cli.loaders.base import LoaderFacts, LoadOptions, Model, ObjectModel, missing_extra
from amms_cli.loaders.pickle_family import framework_of

SCHEMA = "schema.json"


def load(path: Path, options: LoadOptions) -> Model:
    try:
        import skops.io
    except ImportError:
        raise missing_extra("skops") from None
    untrusted = sorted(set(skops.io.get_untrusted_types(file=path)) - set(options.trusted_types))
    if untrusted:
        listed = ",".join(untrusted)
        raise ModelLoadError(
            f"{path.name} holds types skops does not trust by default: {', '.join(untrusted)}",
            hint=f"if you trust them, publish with --trust {listed}",
        )
    obj = skops.io.load(path, trusted=list(options.trusted_types))
    return ObjectModel(obj, framework_of(obj))


def _is_skops(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return SCHEMA in archive.namelist()


def modules_named(path: Path) -> set[str]:
    """The modules of the types the file holds, from its schema (read without loading it)."""
    import json

    with zipfile.ZipFile(path) as archive:
        schema = json.loads(archive.read(SCHEMA))
    modules: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            module = node.get("__module__")
            if isinstance(module, str):
                modules.add(module)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return modules | {"skops"}


SKOPS = LoaderFacts(
    name="skops",
    description="skops.io.dump files (.skops); pip install 'amms_cli[skops]'",
    load=load,
    suffixes=(".skops",),
    detect=_is_skops,
    runs_code=False,
    modules_named=modules_named,
)
