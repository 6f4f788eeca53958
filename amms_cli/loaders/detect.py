"""Which loader fits a path: a folder with model.py, an .onnx file, or a pickle-family file."""

from __future__ import annotations

import pickletools
from pathlib import Path

from amms_cli.errors import RepositoryError
from amms_cli.loaders.custom import MODEL_FILE

# joblib compresses with one of these; its files are otherwise pickles with raw array data inside
_COMPRESSED_MAGIC = (b"\x78", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x04\x22\x4d\x18", b"\x5d\x00\x00")
FORMATS = ("pickle", "cloudpickle", "joblib", "onnx", "custom")


def detect_format(path: Path) -> str:
    if path.is_dir():
        if (path / MODEL_FILE).is_file():
            return "custom"
        raise RepositoryError(
            f"{path} is a folder without {MODEL_FILE}",
            hint=f"a custom model folder needs a {MODEL_FILE} with a class that has load() and predict()",
        )
    if path.suffix.lower() == ".onnx":
        return "onnx"
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(b"\x80"):
        return _pickle_flavour(path)
    if path.suffix.lower() in {".joblib", ".jbl"} or head.startswith(_COMPRESSED_MAGIC):
        return "joblib"
    raise RepositoryError(
        f"cannot tell the format of {path.name}: not a pickle, joblib or ONNX file",
        hint="pass --format pickle|cloudpickle|joblib|onnx|custom if you know it",
    )


def _pickle_flavour(path: Path) -> str:
    """Scan the pickle's opcodes (without executing them) for the modules it references."""
    cloud = False
    with path.open("rb") as handle:
        try:
            for _opcode, argument, _pos in pickletools.genops(handle):
                if not isinstance(argument, str):
                    continue
                if argument.startswith("joblib.numpy_pickle"):
                    return "joblib"
                if argument.startswith("cloudpickle"):
                    cloud = True
        except Exception:
            pass
    return "cloudpickle" if cloud else "pickle"
