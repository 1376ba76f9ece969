"""The train evaluator and training loop: metrics, learning curves, artifacts, determinism, errors.

Tiny nb201 networks (4 channels, 1 cell per stage) on a small synthetic
problem, 1-2 epochs: each evaluation takes well under a second.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.core import EVALUATORS, ConfigError
from nas.data import Dataset, load_dataset
from nas.evaluators.train import METRICS, TrainEvaluator, budget_epochs
from nas.training import augment_batch, batches, resolve_precision, torch_threads
from search_spaces import get_space

CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
SYNTHETIC = {"name": "synthetic", "num_samples": 240, "num_test": 40, "num_classes": 4, "noise": 0.8}


@pytest.fixture(scope="module")
def space():
    return get_space("nb201", channels=4, cells=1)


@pytest.fixture(scope="module")
def arch(space):
    return space.parse(CELL)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return load_dataset(SYNTHETIC, seed=0)


def make(space, data, tmp_path: Path, **options: object) -> TrainEvaluator:
    settings = {"epochs": 2, "batch_size": 32, "lr": 0.05, "latency_repeats": 3, "num_threads": 1}
    settings.update(options)
    return TrainEvaluator(space, data, workdir=tmp_path, **settings)  # type: ignore[arg-type]


def test_registered() -> None:
    assert EVALUATORS.get("train") is TrainEvaluator


def test_evaluate_reports_every_metric_and_a_learning_curve(space, arch, data, tmp_path: Path) -> None:
    curve: list[tuple[int, dict[str, float]]] = []
    result = make(space, data, tmp_path).evaluate(
        arch, seed=0, report=lambda e, m: curve.append((e, dict(m)))
    )
    assert set(result.values) == set(METRICS)
    assert all(math.isfinite(v) for v in result.values.values())
    assert [epoch for epoch, _ in curve] == [1, 2]
    for _, metrics in curve:
        assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy"} <= set(metrics)
        assert 0.0 <= metrics["val_accuracy"] <= 100.0
    assert result.values["val_accuracy"] == curve[-1][1]["val_accuracy"]
    assert result.values["val_accuracy"] > 50.0  # chance is 25%: the network learns the signal
    assert curve[0][1]["lr"] == pytest.approx(0.05)
    stats = space.stats(arch, input_shape=data.input_shape, num_classes=data.num_classes)
    assert result.values["params"] == stats.params and result.values["flops"] == stats.flops > 0
    assert result.values["latency_ms"] > 0
    assert result.user_attrs["epochs_completed"] == 2 and len(result.user_attrs["learning_curve"]) == 2
    assert result.user_attrs["preprocessing"] == data.preprocessing


def test_weights_artifact_loads_into_a_fresh_model(space, arch, data, tmp_path: Path) -> None:
    evaluator = make(space, data, tmp_path, epochs=1)
    result = evaluator.evaluate(arch, seed=0)
    path = Path(result.artifacts["weights"])
    assert path.parent == tmp_path and path.suffix == ".pt"
    assert not list(tmp_path.glob("*.tmp"))
    state = torch.load(path, weights_only=True)
    model = space.build(arch, num_classes=data.num_classes, input_shape=data.input_shape)
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        predictions = model(torch.tensor(data.x_val)).argmax(1).numpy()
    assert 100.0 * (predictions == data.y_val).mean() == pytest.approx(result.values["val_accuracy"])


def test_same_seed_same_result_and_global_rng_untouched(space, arch, data, tmp_path: Path) -> None:
    evaluator = make(space, data, tmp_path, epochs=1)
    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    first = evaluator.evaluate(arch, seed=7)
    assert torch.equal(torch.random.get_rng_state(), before)
    first_weights = torch.load(first.artifacts["weights"], weights_only=True)
    second = evaluator.evaluate(arch, seed=7)
    other = evaluator.evaluate(arch, seed=8)
    for key in ("val_accuracy", "val_loss", "train_loss", "params", "flops"):
        assert first.values[key] == second.values[key]
    second_weights = torch.load(second.artifacts["weights"], weights_only=True)
    other_weights = torch.load(other.artifacts["weights"], weights_only=True)
    assert all(torch.equal(first_weights[k], second_weights[k]) for k in first_weights)
    assert not all(torch.equal(first_weights[k], other_weights[k]) for k in first_weights)


def test_budget_overrides_epochs(space, arch, data, tmp_path: Path) -> None:
    epochs: list[int] = []
    make(space, data, tmp_path, epochs=3).evaluate(arch, budget=1.0, report=lambda e, m: epochs.append(e))
    assert epochs == [1]
    assert budget_epochs(2.0) == 2
    for bad in (0, 0.2, float("nan"), True, "3"):
        with pytest.raises(ConfigError, match="budget"):
            budget_epochs(bad)  # type: ignore[arg-type]


def test_report_exceptions_stop_the_trial(space, arch, data, tmp_path: Path) -> None:
    class Stop(Exception):
        pass

    def report(epoch: int, metrics: Mapping[str, float]) -> None:
        raise Stop

    with pytest.raises(Stop):
        make(space, data, tmp_path).evaluate(arch, report=report)


def test_test_split_is_never_used(space, arch, data, tmp_path: Path) -> None:
    """Replacing the test split by garbage changes nothing a trial reports: the search never reads it."""
    poisoned = Dataset(
        "poisoned",
        data.x_train,
        data.y_train,
        data.x_val,
        data.y_val,
        num_classes=data.num_classes,
        x_test=np.full_like(data.x_test, np.nan),
        y_test=(data.y_test + 1) % data.num_classes,
    )
    clean = make(space, data, tmp_path / "clean", epochs=1).evaluate(arch, seed=0)
    dirty = make(space, poisoned, tmp_path / "dirty", epochs=1).evaluate(arch, seed=0)
    timing = {"latency_ms", "train_seconds"}
    assert {k: v for k, v in dirty.values.items() if k not in timing} == {
        k: v for k, v in clean.values.items() if k not in timing
    }
    assert not any("test" in key for key in [*dirty.values, *dirty.user_attrs])


def test_threads_are_set_per_trial_and_restored(space, arch, data, tmp_path: Path) -> None:
    before = torch.get_num_threads()
    result = make(space, data, tmp_path, epochs=1).evaluate(arch)
    assert result.user_attrs["num_threads"] == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ConfigError, match="num_threads"), torch_threads(0):
        pass


def test_adamw_smoothing_and_augmentation_train(space, arch, data, tmp_path: Path) -> None:
    options = {"optimizer": "adamw", "lr": 0.01, "label_smoothing": 0.1, "augment": True, "epochs": 6}
    losses: list[float] = []
    result = make(space, data, tmp_path, **options).evaluate(
        arch, seed=0, report=lambda e, m: losses.append(m["train_loss"])
    )
    assert losses[-1] < 0.8 * losses[0], losses  # it learns (seeds 0-4: 0.57-0.73 of the first epoch's loss)
    assert result.values["val_accuracy"] > 50.0  # chance is 25% on 4 classes (seeds 0-4: 62.5-83.3)


def test_bf16_autocast_on_cpu_when_asked(space, arch, data, tmp_path: Path) -> None:
    device = torch.device("cpu")
    assert not resolve_precision("auto", device).enabled
    precision = resolve_precision(True, device)
    assert precision.enabled and precision.dtype == torch.bfloat16
    result = make(space, data, tmp_path, amp=True, device="cpu", epochs=1).evaluate(arch)
    assert result.user_attrs["precision"] == "bfloat16" and math.isfinite(result.values["val_loss"])


@pytest.mark.parametrize("option", [{"channels_last": True}, {"compile": "aot_eager"}], ids=str)
def test_layout_and_compile_options_train_the_same_network(option, space, arch, data, tmp_path: Path) -> None:
    """NHWC layout and ``torch.compile`` change how the loop runs, not what it learns.

    Same seed, same data: the curves agree with the default loop's to float
    rounding (different kernels sum in different orders), and the layout
    really was in effect (the weights are stored NHWC). ``aot_eager`` traces
    the graphs as Inductor would without generating C++ (minutes on a busy CPU).
    """
    plain = make(space, data, tmp_path / "plain").evaluate(arch, seed=3)
    other = make(space, data, tmp_path / "other", **option).evaluate(arch, seed=3)
    for name in ("train_loss", "val_loss"):
        assert other.values[name] == pytest.approx(plain.values[name], rel=1e-3, abs=1e-4), name
    assert abs(other.values["val_accuracy"] - plain.values["val_accuracy"]) <= 100.0 / len(data.y_val)
    weights = torch.load(other.artifacts["weights"], weights_only=True)
    convs = [w for w in weights.values() if w.dim() == 4 and w.shape[-1] > 1]
    assert convs, "the test cell has 3x3 convolutions"
    if "channels_last" in option:
        assert all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)


def test_compile_runs_through_torch_compile(space, arch, data, tmp_path: Path, monkeypatch) -> None:
    """``compile`` really trains through ``torch.compile`` with the backend asked for (a spy on the real call)."""
    import nas.training

    calls: list[str] = []
    real = torch.compile

    def counting(model, *args, **kwargs):
        calls.append(kwargs["backend"])
        return real(model, *args, **kwargs)

    monkeypatch.setattr(nas.training.torch, "compile", counting)
    result = make(space, data, tmp_path, compile="aot_eager", epochs=1).evaluate(arch)
    assert calls == ["aot_eager"] and math.isfinite(result.values["val_loss"])
    with pytest.raises(
        ConfigError,
        match="compile='no_such_backend' is not allowed; expected true, false or one of .*inductor",
    ):
        make(space, data, tmp_path, compile="no_such_backend", epochs=1).evaluate(arch)


def test_divergence_gives_nan_objectives(space, arch, data, tmp_path: Path) -> None:
    result = make(space, data, tmp_path, lr=1e12, grad_clip=None, momentum=0.0, epochs=2).evaluate(arch)
    assert result.user_attrs["diverged"]
    assert math.isnan(result.values["val_accuracy"])


def test_option_errors(space, data, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="epochz: unknown field. Did you mean 'epochs'"):
        make(space, data, tmp_path, epochz=3)
    with pytest.raises(ConfigError, match="batch_size"):
        make(space, data, tmp_path, batch_size=0)
    with pytest.raises(ConfigError, match="num_threads"):
        make(space, data, tmp_path, num_threads=0)
    with pytest.raises(ConfigError, match="seed"):
        make(space, data, tmp_path).evaluate(space.parse(CELL), seed=-1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu_is_a_config_error(space, arch, data, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        make(space, data, tmp_path, device="cuda").evaluate(arch)


def test_wrong_space_architecture_is_refused(space, data, tmp_path: Path) -> None:
    darts = get_space("darts", cells=2, channels=4)
    with pytest.raises(ConfigError):
        make(space, data, tmp_path).evaluate(darts.sample(0))


def test_dataset_config_is_loaded_lazily_and_not_pickled(space, arch, tmp_path: Path) -> None:
    evaluator = make(space, SYNTHETIC, tmp_path, epochs=1)
    assert evaluator._dataset is None
    evaluator.evaluate(arch)
    assert evaluator._dataset is not None
    clone = pickle.loads(pickle.dumps(evaluator))
    assert clone._dataset is None
    assert (
        clone.evaluate(arch, seed=0).values["val_loss"] == evaluator.evaluate(arch, seed=0).values["val_loss"]
    )


def test_callable_dataset_source(space, arch, data, tmp_path: Path) -> None:
    assert (
        make(space, lambda: data, tmp_path, epochs=1).evaluate(arch).user_attrs["dataset"]["name"]
        == "synthetic"
    )
    with pytest.raises(ConfigError, match="not a Dataset"):
        make(space, lambda: 3, tmp_path, epochs=1).evaluate(arch)


# -- loop pieces ------------------------------------------------------------------------------------------


def test_batches_drop_a_trailing_single_sample_only_when_shuffling() -> None:
    generator = torch.Generator().manual_seed(0)
    shuffled = batches(65, 32, generator)
    assert [len(b) for b in shuffled] == [32, 32]
    assert [len(b) for b in batches(65, 32, None)] == [32, 32, 1]
    assert sorted(torch.cat(batches(64, 10, generator)).tolist()) == list(range(64))


def test_augment_batch_crops_and_flips_the_input() -> None:
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    a = augment_batch(images, torch.Generator().manual_seed(0))
    b = augment_batch(images, torch.Generator().manual_seed(0))
    assert a.shape == images.shape and torch.equal(a, b)
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1))
    for i in range(2):
        candidates = [
            view
            for top in range(3)
            for left in range(3)
            for view in (padded[i, :, top : top + 8, left : left + 8],)
            for view in (view, view.flip(2))
        ]
        assert any(torch.equal(a[i], c) for c in candidates)


@pytest.mark.slow
def test_quickstart_setting_separates_architectures(tmp_path: Path) -> None:
    """The quickstart's setting (500 training digits, 4 epochs, one thread): a cell with live paths learns
    (>= 75%), an all-``none`` cell stays at chance: the search has something to find."""
    from nas.runner import build_plan
    from nas.settings import load_config

    config = load_config(Path(__file__).resolve().parents[1] / "examples" / "quickstart.yaml")
    space = build_plan(config).space
    accuracy = {}
    for cell in (CELL, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"):
        evaluator = TrainEvaluator(
            space,
            config.dataset,
            data_seed=config.data_seed,
            workdir=tmp_path / str(len(accuracy)),
            num_threads=1,
            **config.evaluator.options,
        )
        accuracy[cell] = evaluator.evaluate(space.parse(cell), seed=0).values["val_accuracy"]
    live, dead = accuracy.values()
    assert live >= 75.0 and dead <= 20.0, accuracy


class Paused(Exception):
    """Raised by a report to end a run after a chosen epoch, as a paused trial's worker goes away."""


def test_a_run_resumed_from_a_checkpoint_continues_the_uninterrupted_run_exactly(
    space, arch, data, tmp_path: Path
) -> None:
    """Epoch k+1 of a resumed run starts from epoch k's weights, optimiser, LR schedule and RNGs.

    Augmentation and label smoothing make every random stream matter; the
    resumed run happens in a fresh evaluator (as in a new worker).
    """
    options = {"epochs": 3, "augment": True, "label_smoothing": 0.1, "optimizer": "sgd"}
    whole: list[tuple[int, dict[str, float]]] = []
    make(space, data, tmp_path, **options).evaluate(
        arch, seed=3, report=lambda e, m: whole.append((e, dict(m)))
    )

    states: dict[int, bytes] = {}
    first: list[tuple[int, dict[str, float]]] = []

    def stop_after_one(epoch: int, metrics: Mapping[str, float]) -> None:
        first.append((epoch, dict(metrics)))
        raise Paused

    with pytest.raises(Paused):
        make(space, data, tmp_path, **options).evaluate(
            arch, seed=3, report=stop_after_one, checkpoint=lambda e, s: states.__setitem__(e, s)
        )
    assert list(states) == [1]
    rest: list[tuple[int, dict[str, float]]] = []
    resumed = make(space, data, tmp_path, **options).evaluate(
        arch, seed=3, report=lambda e, m: rest.append((e, dict(m))), resume=states[1]
    )
    assert [e for e, _ in first + rest] == [1, 2, 3]
    for (_, got), (_, want) in zip(first + rest, whole, strict=True):
        for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
            assert got[name] == pytest.approx(want[name], abs=1e-6), name
    assert resumed.user_attrs["resumed_after_epoch"] == 1
    assert [m["epoch"] for m in resumed.user_attrs["learning_curve"]] == [1.0, 2.0, 3.0]


def test_a_checkpoint_of_another_architecture_is_refused(space, arch, data, tmp_path: Path) -> None:
    states: dict[int, bytes] = {}
    make(space, data, tmp_path, epochs=1).evaluate(
        arch, seed=0, checkpoint=lambda e, s: states.__setitem__(e, s)
    )
    other = get_space("nb201", channels=8, cells=1).parse(CELL)
    wide = TrainEvaluator(get_space("nb201", channels=8, cells=1), data, workdir=tmp_path, epochs=2)
    with pytest.raises(ConfigError, match="does not fit this training run"):
        wide.evaluate(other, seed=0, resume=states[1])
