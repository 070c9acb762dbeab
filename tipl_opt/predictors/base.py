"""The predictor contract: from a window of past weights, where will they be later?"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from tipl_opt.errors import TiplError
from tipl_opt.paths.spec import ParamSpec


@runtime_checkable
class Predictor(Protocol):
    """Predicts future weights from a window of past snapshots, for any P and architecture.

    ``context`` is the number K of snapshots it needs; ``horizons`` the horizons it was made
    for (the optimizer's default horizon is the longest; ``(1,)`` for predictors that take any
    horizon equally well, such as ``linear``). ``predict`` receives

    * ``window``: [K, P] float32 tensor, oldest snapshot first (any device);
    * ``steps``: [K] tensor of the snapshots' positions in time (env steps or snapshot indices;
      only their spacing matters) or ``None`` for evenly spaced snapshots;
    * ``specs``: the parameter spec, whose element counts sum to P (per-layer predictors use it);
    * ``horizon``: how many snapshot intervals ahead of the last snapshot to predict (>= 1);

    and returns a [P] float32 tensor on the window's device. Predicting "no move" returns the
    last snapshot.

    Optional: a predictor that can use a longer history than it needs declares ``max_context``
    (int >= ``context``); :class:`~tipl_opt.optimizer.TIPLOptimizer` then keeps that many
    snapshots, moved along with every jump, and passes all it holds (``K`` between ``context``
    and ``max_context``), jumping as soon as ``context`` are there.
    """

    @property
    def name(self) -> str:
        """Registered name (``"linear"``, ``"tipl"``...)."""
        ...

    @property
    def context(self) -> int:
        """K, the number of snapshots a window must hold."""
        ...

    @property
    def horizons(self) -> tuple[int, ...]:
        """Snapshot intervals ahead it was made for, increasing."""
        ...

    def predict(self, window: torch.Tensor, steps: torch.Tensor | None,
                specs: Sequence[ParamSpec], horizon: int) -> torch.Tensor: ...


@runtime_checkable
class CheckpointPredictor(Predictor, Protocol):
    """A predictor that lives in a checkpoint folder (trained ones).

    :meth:`save` writes ``folder/config.json`` (a JSON object with at least ``"predictor"``:
    the registered name, so :func:`~tipl_opt.predictors.load_predictor` finds the class) and
    whatever else it needs (``model.safetensors``; never pickle). The registered factory's
    ``load(folder, device=...)`` reads it back.
    """

    def save(self, folder: str | os.PathLike[str], **info: Any) -> Path:
        """Write the checkpoint; ``info`` (JSON-serialisable) is stored with it."""
        ...


@runtime_checkable
class BatchedTokenPredictor(Predictor, Protocol):
    """A token-space predictor that can run many tokenised windows at once (pretraining's
    validation uses it when present)."""

    def predict_token_deltas(self, tokens: torch.Tensor, times: torch.Tensor,
                             descriptors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Batched tokens ``[B, G, K, r]``, times ``[B, K]``, group descriptors ``[B, G, D]``
        and group mask ``[B, G]`` -> predicted coordinate moves ``[B, G, H, r]`` (one per
        horizon of :attr:`horizons`), on the tokens' device."""
        ...


def check_window(window: torch.Tensor, context: int, horizon: int,
                 specs: Sequence[ParamSpec] | None = None) -> None:
    """Raise a clear :class:`TiplError` for a window a predictor cannot use (wrong shape, too
    short, a spec of another size, non-finite values)."""
    if window.ndim != 2:
        raise TiplError(f"window must be [K, P], got shape {list(window.shape)}")
    if window.shape[0] < context:
        raise TiplError(f"window holds {window.shape[0]} snapshots but the predictor needs a "
                        f"context of {context}; record more snapshots before predicting")
    if horizon < 1:
        raise TiplError(f"horizon must be >= 1, got {horizon}")
    if specs is not None and sum(s.numel for s in specs) != window.shape[1]:
        raise TiplError(f"the parameter spec describes {sum(s.numel for s in specs)} values but "
                        f"the window has P={window.shape[1]}: predictor and policy do not match")
    recent = window[-context:]
    finite = torch.isfinite(recent).all(dim=1)
    if not bool(finite.all()):
        row = window.shape[0] - context + int(torch.nonzero(~finite)[0])
        raise TiplError(f"snapshot {row} of the window (oldest = 0) holds non-finite weights "
                        "(NaN or inf); there is nothing to predict from")


def history_length(predictor: Predictor) -> int:
    """How many snapshots to pass ``predictor`` where a run holds them: its ``max_context``
    when it declares one (a longer history it can use, as ``trend`` and ``average`` do), else
    its ``context``."""
    return max(int(predictor.context), int(getattr(predictor, "max_context", 0) or 0))


def spacing(steps: torch.Tensor | None, k: int, device: torch.device) -> torch.Tensor:
    """Snapshot times relative to the last one, in units of the mean interval: [K], last = 0."""
    if steps is None:
        return torch.arange(-(k - 1), 1, device=device, dtype=torch.float32)
    t = steps.to(device=device, dtype=torch.float64)[-k:]
    dt = (t[-1] - t[0]) / max(k - 1, 1)
    if not torch.isfinite(dt) or dt <= 0:
        return torch.arange(-(k - 1), 1, device=device, dtype=torch.float32)
    return ((t - t[-1]) / dt).to(torch.float32)
