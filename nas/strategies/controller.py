"""The NAS-RL controller's math in numpy: an LSTM that emits one decision after another.

Zoph & Le (2017) generate an architecture with a recurrent network: at step
``t`` the LSTM reads the embedding of the choice made at step ``t - 1`` (a
start token at ``t = 0``), and a softmax head of its own turns the hidden
state into a distribution over decision ``t``'s choices. Each decision is
thereby conditioned on all earlier ones, which an independent per-decision
policy cannot express (e.g. "a convolution on this edge pays only if the
previous edge is a skip").

Written with manual backpropagation through time so the strategy stays pure
numpy (the strategy layer imports no torch); ``tests/test_policy_strategies.py``
checks the gradient against finite differences. :meth:`LSTMController.gradient`
returns the gradient of the REINFORCE objective

    J = advantage * sum_t log p_t(a_t) + entropy_weight * sum_t H(p_t)

for one sampled architecture, and :class:`Adam` ascends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nas.strategies.decisions import draw

Params = dict[str, np.ndarray]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free form of 1 / (1 + exp(-x))


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


@dataclass
class _Step:
    """What backpropagation needs from one forward step."""

    token: int
    xh: np.ndarray  # [input embedding; previous hidden state]
    gates: np.ndarray  # i, f, o, g after their nonlinearities
    c_prev: np.ndarray
    c: np.ndarray
    h: np.ndarray
    p: np.ndarray  # the softmax over this decision's choices


class LSTMController:
    """One-layer LSTM with a softmax head per decision; ``sizes[t]`` choices at step ``t``.

    The embedding width equals the hidden width, as in the NAS-RL and ENAS
    controllers. Parameters start uniform in ``[-init_scale, init_scale]``,
    which makes the first policy nearly uniform (random search).
    """

    def __init__(
        self, sizes: Sequence[int], hidden: int, rng: np.random.Generator, init_scale: float = 0.1
    ) -> None:
        self.sizes = [int(k) for k in sizes]
        self.hidden = int(hidden)
        # Token 0 is the start token; decision t's choice k is token offsets[t] + k.
        self.offsets = np.concatenate([[1], 1 + np.cumsum(self.sizes)[:-1]]).astype(int)
        n_tokens = 1 + sum(self.sizes)
        h = self.hidden

        def uniform(*shape: int) -> np.ndarray:
            return rng.uniform(-init_scale, init_scale, size=shape)

        self.params: Params = {
            "embed": uniform(n_tokens, h),
            "W": uniform(4 * h, 2 * h),
            "b": np.zeros(4 * h),
        }
        for t, k in enumerate(self.sizes):
            self.params[f"V{t}"] = uniform(k, h)
            self.params[f"a{t}"] = np.zeros(k)

    # -- forward ------------------------------------------------------------------------
    def _step(self, token: int, h_prev: np.ndarray, c_prev: np.ndarray, t: int) -> _Step:
        p, hid = self.params, self.hidden
        xh = np.concatenate([p["embed"][token], h_prev])
        z = p["W"] @ xh + p["b"]
        gates = np.concatenate([_sigmoid(z[: 3 * hid]), np.tanh(z[3 * hid :])])
        i, f, o, g = (gates[k * hid : (k + 1) * hid] for k in range(4))
        c = f * c_prev + i * g
        h = o * np.tanh(c)
        probs = _softmax(p[f"V{t}"] @ h + p[f"a{t}"])
        return _Step(token, xh, gates, c_prev, c, h, probs)

    def _run(self, choose: Sequence[int]) -> tuple[list[int], list[_Step]]:
        """Forward over every decision along the given choices."""
        h = np.zeros(self.hidden)
        c = np.zeros(self.hidden)
        token = 0
        actions: list[int] = []
        steps: list[_Step] = []
        for t in range(len(self.sizes)):
            step = self._step(token, h, c, t)
            action = int(choose[t])
            actions.append(action)
            steps.append(step)
            h, c, token = step.h, step.c, int(self.offsets[t]) + action
        return actions, steps

    def sample(self, rng: np.random.Generator, n: int = 1) -> np.ndarray:
        """``n`` architectures' choice indices drawn from the policy, as an ``(n, decisions)`` array.

        The same recurrence as :meth:`_step`, on a batch of hidden states.
        """
        p, hid = self.params, self.hidden
        h = np.zeros((n, hid))
        c = np.zeros((n, hid))
        tokens = np.zeros(n, dtype=int)
        actions = np.zeros((n, len(self.sizes)), dtype=int)
        for t in range(len(self.sizes)):
            z = np.concatenate([p["embed"][tokens], h], axis=1) @ p["W"].T + p["b"]
            i, f, o = (_sigmoid(z[:, k * hid : (k + 1) * hid]) for k in range(3))
            c = f * c + i * np.tanh(z[:, 3 * hid :])
            h = o * np.tanh(c)
            logits = h @ p[f"V{t}"].T + p[f"a{t}"]
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            actions[:, t] = draw(probs / probs.sum(axis=1, keepdims=True), rng)
            tokens = self.offsets[t] + actions[:, t]
        return actions

    def probabilities(self, actions: Sequence[int]) -> list[np.ndarray]:
        """The distribution of each decision along the path that made ``actions``."""
        return [step.p for step in self._run(actions)[1]]

    def objective(self, actions: Sequence[int], advantage: float, entropy_weight: float) -> float:
        """The REINFORCE objective ``J`` (module docstring) for one architecture."""
        steps = self._run(actions)[1]
        return float(
            sum(
                advantage * np.log(s.p[a]) - entropy_weight * float(s.p @ np.log(s.p))
                for s, a in zip(steps, actions, strict=True)
            )
        )

    # -- backward -----------------------------------------------------------------------
    def gradient(self, actions: Sequence[int], advantage: float, entropy_weight: float) -> Params:
        """dJ/dparams by backpropagation through time."""
        steps = self._run(actions)[1]
        p, hid = self.params, self.hidden
        grads = {name: np.zeros_like(value) for name, value in p.items()}
        dh_next = np.zeros(hid)
        dc_next = np.zeros(hid)
        for t in reversed(range(len(steps))):
            s = steps[t]
            log_p = np.log(s.p)
            entropy = -float(s.p @ log_p)
            dlogits = advantage * (np.eye(len(s.p))[actions[t]] - s.p) - entropy_weight * s.p * (
                log_p + entropy
            )
            grads[f"V{t}"] += np.outer(dlogits, s.h)
            grads[f"a{t}"] += dlogits
            dh = p[f"V{t}"].T @ dlogits + dh_next
            i, f, o, g = (s.gates[k * hid : (k + 1) * hid] for k in range(4))
            tanh_c = np.tanh(s.c)
            dc = dc_next + dh * o * (1.0 - tanh_c**2)
            dz = np.concatenate(
                [
                    dc * g * i * (1 - i),
                    dc * s.c_prev * f * (1 - f),
                    dh * tanh_c * o * (1 - o),
                    dc * i * (1 - g**2),
                ]
            )
            grads["W"] += np.outer(dz, s.xh)
            grads["b"] += dz
            dxh = p["W"].T @ dz
            grads["embed"][s.token] += dxh[:hid]
            dh_next = dxh[hid:]
            dc_next = dc * f
        return grads


class Adam:
    """Adam (Kingma & Ba) that *ascends* an objective; the NAS-RL controller's optimiser."""

    def __init__(
        self,
        params: Params,
        learning_rate: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        self.params = params
        self.learning_rate = learning_rate
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.steps = 0

    def ascend(self, grads: Params) -> None:
        self.steps += 1
        correction1 = 1.0 - self.beta1**self.steps
        correction2 = 1.0 - self.beta2**self.steps
        for name, grad in grads.items():
            self.m[name] = self.beta1 * self.m[name] + (1 - self.beta1) * grad
            self.v[name] = self.beta2 * self.v[name] + (1 - self.beta2) * grad**2
            step = (self.m[name] / correction1) / (np.sqrt(self.v[name] / correction2) + self.eps)
            self.params[name] += self.learning_rate * step
