"""The three model formats of a bundle and how each is written and run.

* ``pytorch`` -- ``model.pt``: the state dict, loadable with
  ``torch.load(..., weights_only=True)`` (no pickled code); with
  ``genotype.json`` it rebuilds the model through the search space. It is
  always written: it is what :func:`nas.export.load_exported` reads.
* ``torchscript`` -- ``model.ts``: ``torch.jit.script`` when the model's
  Python is scriptable, else ``torch.jit.trace`` (the card records which;
  the parity check at batch sizes 1 and 3 shows a trace did not bake in the
  example's shape).
* ``onnx`` -- ``model.onnx``: the TorchScript-based exporter (deterministic,
  needs no download) at opset 17, input ``input`` and output ``logits``
  with a dynamic batch axis, checked by ``onnx.checker``; run with ONNX
  Runtime's CPU provider.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.core.errors import ConfigError, UnknownNameError, require
from nas.export.errors import ConversionError

logger = logging.getLogger(__name__)

#: Every format, in bundle order.
FORMATS: tuple[str, ...] = ("pytorch", "torchscript", "onnx")
#: File name of each format inside a bundle.
FILES: dict[str, str] = {"pytorch": "model.pt", "torchscript": "model.ts", "onnx": "model.onnx"}
ONNX_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"

#: ``run(batch) -> logits`` for one format, on float32 NCHW numpy arrays.
Runner = Callable[[np.ndarray], np.ndarray]

#: Warnings of the legacy ONNX exporter that say nothing about this model.
_EXPORTER_NOISE = (
    r".*legacy TorchScript-based ONNX export.*",
    r".*The feature will be removed.*",
    r".*Constant folding - Only steps=1 can be constant folded.*",
)
#: TorchScript is deprecated upstream but remains the format most runtimes (and C++ libtorch) load.
_JIT_DEPRECATION = r"`torch\.jit\.\w+` is deprecated.*"


@contextlib.contextmanager
def quiet_jit() -> Iterator[None]:
    """Silence torch's deprecation notices for the TorchScript calls a bundle is made of."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_JIT_DEPRECATION, category=DeprecationWarning)
        yield


def parse_formats(formats: str | Iterable[str]) -> tuple[str, ...]:
    """Normalise ``"all"``, ``"onnx"``, ``"onnx,torchscript"`` or a list of names; ``pytorch`` is always kept."""
    items = [formats] if isinstance(formats, str) else list(formats)
    names = [part.strip().lower() for item in items for part in str(item).split(",") if part.strip()]
    if not names:
        raise ConfigError(f"no export format given; allowed: {', '.join(FORMATS)}, all")
    for name in names:
        if name not in (*FORMATS, "all"):
            raise UnknownNameError("export format", name, (*FORMATS, "all"))
    if "all" in names:
        return FORMATS
    wanted = {"pytorch", *names}
    return tuple(f for f in FORMATS if f in wanted)


def write_pytorch(model: nn.Module, path: Path) -> dict[str, Any]:
    """Save the CPU state dict (tensors only, so ``weights_only=True`` loads it)."""
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    torch.save(state, path)
    return {"file": path.name, "load": "torch.load(path, weights_only=True) + genotype.json"}


def write_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> dict[str, Any]:
    """Script the model, or trace it when its Python is not scriptable; save it."""
    with quiet_jit():
        return _write_torchscript(model, example, path)


def _write_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> dict[str, Any]:
    info: dict[str, Any] = {"file": path.name}
    try:
        compiled: torch.jit.ScriptModule = torch.jit.script(model)
        info["method"] = "script"
    except Exception as exc:  # scripting fails with many error types on unscriptable Python
        info["method"] = "trace"
        info["script_error"] = _first_line(exc)
        logger.info("torch.jit.script failed (%s); tracing instead", info["script_error"])
        try:
            with torch.no_grad():
                compiled = torch.jit.trace(model, example, check_trace=False)
        except Exception as trace_exc:
            raise ConversionError(
                "torchscript",
                f"the model can be neither scripted ({info['script_error']}) nor traced "
                f"({_first_line(trace_exc)}); export without it, e.g. --format pytorch --format onnx",
            ) from trace_exc
    torch.jit.save(compiled, str(path))
    return info


def write_onnx(model: nn.Module, example: torch.Tensor, path: Path, *, what: str) -> dict[str, Any]:
    """Export at opset 17 with a dynamic batch axis and check the file with ``onnx.checker``."""
    onnx = require("onnx", "export")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            for message in _EXPORTER_NOISE:
                warnings.filterwarnings("ignore", message=message)
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=False,
                opset_version=ONNX_OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                do_constant_folding=True,
            )
    except Exception as exc:  # the exporter raises RuntimeError subclasses and others for unsupported ops
        op = re.search(r"operator '([^']+)'", str(exc))
        named = f" (op {op.group(1)})" if op else ""
        raise ConversionError(
            "onnx",
            f"{what} cannot be expressed in ONNX opset {ONNX_OPSET}{named}: {_first_line(exc)} "
            "Export the other formats instead, e.g. --format pytorch --format torchscript",
        ) from exc
    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:  # onnx.checker.ValidationError and friends
        raise ConversionError("onnx", f"the ONNX file exported for {what} is invalid: {exc}") from exc
    opsets = {entry.domain or "ai.onnx": entry.version for entry in onnx.load(str(path)).opset_import}
    return {
        "file": path.name,
        "opset": opsets.get("ai.onnx", ONNX_OPSET),
        "input": INPUT_NAME,
        "output": OUTPUT_NAME,
        "dynamic_axes": {INPUT_NAME: {"0": "batch"}, OUTPUT_NAME: {"0": "batch"}},
        "exporter": "torch.onnx.export(dynamo=False)",
    }


# -- runners --------------------------------------------------------------------------------------------


def load_torchscript(path: str | Path) -> torch.jit.ScriptModule:
    """Load a ``model.ts`` on the CPU."""
    with quiet_jit():
        return torch.jit.load(str(path), map_location="cpu")


def torch_runner(module: nn.Module | torch.jit.ScriptModule) -> Runner:
    """Run an eager or TorchScript module on numpy batches (no autograd)."""

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(batch)).numpy()

    return run


def onnx_session(path: str | Path, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session (``threads``: intra-op threads, ``None`` for its default)."""
    ort = require("onnxruntime", "export")
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its warnings are about graph rewrites, not the model
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def onnx_runner(session: Any) -> Runner:
    def run(batch: np.ndarray) -> np.ndarray:
        return session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]

    return run


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


__all__ = [
    "FILES",
    "FORMATS",
    "INPUT_NAME",
    "ONNX_OPSET",
    "OUTPUT_NAME",
    "Runner",
    "load_torchscript",
    "onnx_runner",
    "onnx_session",
    "parse_formats",
    "torch_runner",
    "write_onnx",
    "write_pytorch",
    "write_torchscript",
]
