"""The model card: ``card.json`` for machines, ``README.md`` for people.

The card says what the model is (study, trial, architecture), how good
(search metrics and a test accuracy measured at export on the held-out test
split, which no search ever reads), how big and fast (parameters, FLOPs,
measured latency on this CPU), how to feed it (input shape and
preprocessing), what produced it (platform and library versions) and the
sha256 of every other file in the bundle, which
:func:`nas.export.load_exported` verifies.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Mapping
from typing import Any

#: Version of the bundle layout; bumped when card.json or genotype.json change incompatibly.
BUNDLE_VERSION = 1
CARD_FILE = "card.json"
README_FILE = "README.md"
GENOTYPE_FILE = "genotype.json"


def platform_versions() -> dict[str, str]:
    """Versions of the platform and every library that produced or runs the bundle."""
    import nas

    versions = {"nas": nas.__version__, "python": platform.python_version(), "os": platform.platform()}
    for module in ("torch", "onnx", "onnxruntime", "numpy"):
        try:
            versions[module] = str(__import__(module).__version__)
        except ImportError:
            versions[module] = "not installed"
    return versions


def to_json(data: Any) -> str:
    """Stable, strict JSON (non-finite floats become ``null``: JSON has no NaN)."""
    return json.dumps(_finite(data), indent=2, sort_keys=False, default=str, allow_nan=False) + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# -- README ---------------------------------------------------------------------------------------


def render_readme(card: Mapping[str, Any], files: Mapping[str, str]) -> str:
    """A human-readable model card with loading snippets for every format in the bundle."""
    study, trial, arch, model = card["study"], card["trial"], card["architecture"], card["model"]
    shape = model["input_shape"]
    lines = [
        f"# {study['name']} / trial {trial['number']}: exported {arch['space']} model",
        "",
        f"Exported by nas {card['platform']['nas']} on {card['created_at']}.",
        "",
        "## Architecture",
        "",
        f"- space: `{arch['space']}` with options `{json.dumps(study['space_options'])}`",
        f"- string form: `{arch['string']}`",
        f"- canonical key: `{arch['canonical_key']}`",
        "",
        "## Quality",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for name, value in (trial.get("values") or {}).items():
        direction = study["objectives"].get(name)
        lines.append(f"| {name} ({direction}, search objective) | {_num(value)} |")
    test = card["test"]
    test_value = (
        f"{_num(test['accuracy'])} % on {test['samples']} images" if test["accuracy"] is not None else "n/a"
    )
    lines.append(f"| test accuracy (measured at export) | {test_value} |")
    if test.get("note"):
        lines += ["", f"Test accuracy not measured: {test['note']}."]
    weights = card["weights"]
    source = (
        f"retrained for {weights['epochs']} epochs (seed {weights['seed']}) at export"
        if weights["kind"] == "retrained"
        else "the trial's stored weights (sha256 verified)"
    )
    recipe = card.get("recipe")
    if recipe:
        lines += [
            "",
            "## Training recipe",
            "",
            "Searched with the architecture (the trial trained with it):",
            "",
        ]
        lines += ["| setting | value |", "|---|---|"]
        lines += [f"| {name} | {_num(value)} |" for name, value in recipe.items()]
    lines += [
        "",
        f"Weights: {source}.",
        "",
        "## Size and speed",
        "",
        f"- parameters: {model['params']:,}",
        f"- FLOPs (batch 1): {model['flops']:,}",
        "",
        "| engine | batch-1 latency (median ms) |",
        "|---|---|",
    ]
    latency = card["latency"]
    for engine, ms in latency["ms"].items():
        lines.append(f"| {engine} | {ms:.3f} |")
    lines += [
        "",
        f"Measured on {latency['cpu']} with {latency['threads']} thread(s), median of {latency['repeats']} "
        f"forwards after {latency['warmup']} warm-up runs.",
        *_specialization_lines(card.get("specialization")),
        "",
        "## Input",
        "",
        f"float32 tensor of shape `(batch, {', '.join(map(str, shape))})` (NCHW), output `(batch, "
        f"{model['num_classes']})` logits.",
    ]
    prep = card.get("preprocessing")
    if prep:
        lines.append(
            f"Preprocessing: `x = (raw * {prep.get('scale')} - mean) / std` per channel with mean "
            f"`{prep.get('mean')}` and std `{prep.get('std')}`."
        )
    parity = card["parity"]
    lines += [
        "",
        "## Parity",
        "",
        f"At export, {len(parity['batch_sizes'])} random inputs (batch sizes {parity['batch_sizes']}) went "
        f"through every format; the largest absolute difference to PyTorch was:",
        "",
    ]
    lines += [f"- {fmt}: {diff:.2e}" for fmt, diff in parity["max_abs_diff"].items()]
    lines += ["", f"(allowed: {parity['tolerance']:g})", "", "## Loading", ""]
    lines += _snippets(card, shape)
    lines += ["", "## Files", "", "| file | sha256 |", "|---|---|"]
    lines += [f"| {name} | `{digest}` |" for name, digest in files.items()]
    lines += [
        "",
        f"`{CARD_FILE}` lists the sha256 of every file including this one; `nas.load_exported` checks them.",
        "",
        "## Versions",
        "",
    ]
    lines += [f"- {name}: {version}" for name, version in card["platform"].items()]
    return "\n".join(lines) + "\n"


def _specialization_lines(target: Mapping[str, Any] | None) -> list[str]:
    """The device this sub-network was specialised for (``nas specialize``), if it was."""
    if not target:
        return []
    supernet = target.get("supernet") or {}
    lines = [
        "",
        "## Device target",
        "",
        f"Specialised without retraining from supernet trial {supernet.get('trial')} of study "
        f"`{supernet.get('study')}` for device `{target['device']}` within {_num(target.get('max_latency_ms'))} ms.",
        "",
        f"- predicted latency on `{target['device']}`: {_num(target.get('predicted_latency_ms'))} ms",
    ]
    if target.get("measured_latency_ms") is not None:
        lines.append(
            f"- measured latency (ONNX Runtime, this export): {_num(target['measured_latency_ms'])} ms "
            f"({_num(target.get('measured_over_predicted'))} x the prediction)"
        )
    lines.append(f"- fine-tuning epochs after extraction: {target.get('finetune_epochs') or 0}")
    return lines


def _snippets(card: Mapping[str, Any], shape: list[int]) -> list[str]:
    dims = ", ".join(map(str, shape))
    lines = [
        "With the platform installed (checks every sha256, rebuilds the model from the genotype):",
        "",
        "```python",
        "import nas, torch",
        "exported = nas.load_exported('.')",
        f"logits = exported.model(torch.randn(1, {dims}))",
        "```",
    ]
    formats = card["formats"]
    if "torchscript" in formats:
        lines += [
            "",
            "TorchScript (needs only torch):",
            "",
            "```python",
            "import torch",
            "model = torch.jit.load('model.ts')",
            f"logits = model(torch.randn(1, {dims}))",
            "```",
        ]
    if "onnx" in formats:
        lines += [
            "",
            "ONNX Runtime (needs only onnxruntime and numpy):",
            "",
            "```python",
            "import numpy as np, onnxruntime as ort",
            "session = ort.InferenceSession('model.onnx', providers=['CPUExecutionProvider'])",
            f"logits = session.run(['logits'], {{'input': np.zeros((1, {dims}), np.float32)}})[0]",
            "```",
        ]
    return lines


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


__all__ = [
    "BUNDLE_VERSION",
    "CARD_FILE",
    "GENOTYPE_FILE",
    "README_FILE",
    "platform_versions",
    "render_readme",
    "to_json",
]
