"""PyTorch models as PyTorch recommends saving them for inference, the extra `amms_cli[torch]`:
TorchScript archives (`torch.jit.save(torch.jit.script(model), "m.pt")`) and, where the installed
torch supports it, `torch.export` programs (`torch.export.save(program, "m.pt2")`). A TorchScript
archive is a program, and loading either runs code from it. A `torch.save`d module or state dict
is refused with what to do instead: it needs the model's Python class to be rebuilt."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from amms_cli.errors import RepositoryError
from amms_cli.loaders.base import LoaderFacts, LoadOptions, Model, Writer, instance_of, missing_extra, with_suffix

FLOATS = "f"


class TorchModel(Model):
    framework = "pytorch"

    def __init__(self, module: Any, torch: Any, input_shape: list[int | None] | None = None) -> None:
        self.module = module
        self._torch = torch
        self.input_shape = input_shape
        self.input_dtype = np.float32 if input_shape is not None else None

    def predict(self, inputs: Any) -> Any:
        array = np.asarray(inputs)
        tensor = self._torch.as_tensor(array.astype(np.float32) if array.dtype.kind == FLOATS else array)
        with self._torch.no_grad():
            output = self.module(tensor)
        return output.detach().cpu().numpy() if hasattr(output, "detach") else output

    @property
    def row_independent(self) -> bool:
        return True  # a batch of tensors in, a batch out

    def close(self) -> None:
        self.module = None


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise missing_extra("torch") from None
    return torch


def load_script(path: Path, options: LoadOptions) -> Model:
    torch = _torch()
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; its archives still load and run
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path), map_location="cpu")
    module.eval()
    return TorchModel(module, torch)


def load_export(path: Path, options: LoadOptions) -> Model:
    torch = _torch()
    program = torch.export.load(str(path))
    return TorchModel(program.module(), torch, _exported_input_shape(program))


def _exported_input_shape(program: Any) -> list[int | None] | None:
    """The shape of the program's one user input, a symbolic (dynamic) dimension as None."""
    names = list(program.graph_signature.user_inputs)
    if len(names) != 1:
        return None
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name == names[0]:
            value = node.meta.get("val")
            if value is not None:
                return [dim if isinstance(dim, int) else None for dim in value.shape]
    return None


def _entries(path: Path) -> list[str]:
    if not zipfile.is_zipfile(path):
        return []
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def _is_script(path: Path) -> bool:
    entries = _entries(path)
    return any("/code/" in name for name in entries) and any(name.endswith("/constants.pkl") for name in entries)


def _is_export(path: Path) -> bool:
    entries = _entries(path)
    return any(name.endswith("/archive_format") for name in entries) and any("/models/" in name for name in entries)


def misfit(path: Path) -> tuple[str, str] | None:
    """A torch.save file: a pickled module or state dict, which only its own Python class can rebuild."""
    entries = _entries(path)
    if not any(name.endswith("/data.pkl") for name in entries) or _is_script(path) or _is_export(path):
        return None
    return (
        f"{path.name} is a torch.save() file (a pickled module or state dict), which needs its Python class",
        "save it with torch.jit.save(torch.jit.script(model), 'm.pt') or torch.export.save(program, 'm.pt2'), "
        "or serve it from a folder with a model.py that rebuilds the module",
    )


def _modules(path: Path) -> set[str]:
    return {"torch"}


def _write_script(obj: Any, target: Path) -> Path:
    """A module as TorchScript: scripted here when it is not already (torch.jit.script)."""
    import torch

    path = with_suffix(target, ".pt")
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript for new models; archives still load
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            scripted = obj if isinstance(obj, torch.jit.ScriptModule) else torch.jit.script(obj)
        except Exception as exc:
            raise RepositoryError(
                f"torch.jit.script could not compile {type(obj).__name__}: {' '.join(str(exc).split())[:300]}",
                hint="pass torch.jit.trace(model, example_input) or a torch.export program instead",
            ) from None
        torch.jit.save(scripted, str(path))
    return path


def _write_export(obj: Any, target: Path) -> Path:
    import torch

    path = with_suffix(target, ".pt2")
    torch.export.save(obj, str(path))
    return path


TORCHSCRIPT = LoaderFacts(
    name="torchscript",
    description="TorchScript archives (torch.jit.save, .pt); pip install 'amms_cli[torch]'",
    load=load_script,
    suffixes=(".pt", ".pth"),
    detect=_is_script,
    runs_code=True,  # a TorchScript archive is a program
    modules_named=_modules,
    misfit=misfit,
    writer=Writer(lambda obj: instance_of(obj, "torch.nn", "Module"), _write_script),
)
TORCH_EXPORT = LoaderFacts(
    name="torch_export",
    description="torch.export programs (torch.export.save, .pt2); pip install 'amms_cli[torch]'",
    load=load_export,
    suffixes=(".pt2",),
    detect=_is_export,
    runs_code=True,
    modules_named=_modules,
    writer=Writer(lambda obj: instance_of(obj, "torch.export", "ExportedProgram"), _write_export),
)
