"""Settings of a training evaluator (``evaluator: {name: train, epochs: 4, ...}``).

A module of its own so that the training loop (``nas.training``), the train
evaluator and export import these settings without the whole search schema.
An evaluator that trains declares this model as its ``settings`` (see
:class:`nas.core.evaluator.Evaluator`); the search schema then validates its
options with it at load.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nas.settings.sections import Section


class TrainSettings(Section):
    """Options of the ``train`` evaluator (see :class:`nas.evaluators.train.TrainEvaluator`).

    Defaults follow common small-CNN practice: SGD with Nesterov momentum and a
    per-step cosine schedule, weight decay 5e-4, gradient clipping at 5 as in
    DARTS. ``amp='auto'`` uses fp16 mixed precision on CUDA only (bf16 on CPU is
    often slower and less accurate for tiny models, so it is opt-in with ``true``).
    """

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.05, gt=0.0)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    #: Mixup (Zhang et al. 2018): each training batch becomes ``lam * x + (1 - lam) * x[perm]`` with
    #: ``lam ~ Beta(mixup, mixup)`` and the loss mixed alike; 0 turns it off (the default).
    mixup: float = Field(0.0, ge=0.0, le=10.0)
    grad_clip: float | None = Field(5.0, gt=0.0)
    augment: bool = False
    amp: bool | Literal["auto"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    latency_repeats: int = Field(20, ge=1)
    latency_warmup: int = Field(3, ge=0)
    eval_batch_size: int = Field(512, ge=1)
    #: NHWC layout for the model and batches (off: on this project's CPU figures it does not pay).
    channels_last: bool = False
    #: ``torch.compile`` the model: ``true`` (Inductor) or a backend name such as ``aot_eager``
    #: (off by default: on CPU, compilation costs more than it saves for short trials).
    compile: bool | str = False
    #: ``parent``: a trial proposed as a morphism of another (strategy ``morphism``) starts from its
    #: parent's stored weights mapped through the morphism, and trains ``inherit_epochs`` only.
    inherit: Literal["none", "parent"] = "none"
    #: Epochs of a child that inherits (default: half of ``epochs``, at least 1).
    inherit_epochs: int | None = Field(None, ge=1)

    @property
    def child_epochs(self) -> int:
        """The epochs of a child that inherits its parent's weights."""
        return self.inherit_epochs if self.inherit_epochs is not None else max(1, self.epochs // 2)


__all__ = ["TrainSettings"]
