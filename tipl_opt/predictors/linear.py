"""``linear``: least-squares straight-line extrapolation over the window. The baseline."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tipl_opt.paths.spec import ParamSpec
from tipl_opt.predictors.base import check_window, spacing


class LinearPredictor:
    """Fits ``w(t) = a + b t`` per weight by least squares over the last ``context`` snapshots
    and evaluates it ``horizon`` mean intervals after the last one. Needs no training.

    Exact on a straight path; a context of 2 is plain "repeat the last step".
    """

    name = "linear"
    horizons: tuple[int, ...] = (1,)
    """Any horizon extrapolates equally well; the optimizer jumps 1 interval unless told."""

    def __init__(self, context: int = 8) -> None:
        if context < 2:
            raise ValueError(f"linear extrapolation needs a context >= 2, got {context}")
        self.context = context

    def predict(self, window: torch.Tensor, steps: torch.Tensor | None,
                specs: Sequence[ParamSpec], horizon: int) -> torch.Tensor:
        check_window(window, self.context, horizon)
        w = window[-self.context:].to(torch.float32)
        t = spacing(steps, self.context, w.device)
        tc = t - t.mean()
        mean = w.mean(dim=0)
        slope = (tc[:, None] * (w - mean)).sum(dim=0) / (tc * tc).sum()
        return mean + slope * (float(horizon) - t.mean())

    def __repr__(self) -> str:
        return f"LinearPredictor(context={self.context})"
