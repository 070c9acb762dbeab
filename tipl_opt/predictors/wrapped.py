"""The shared part of predictors built around an inner predictor's move and a longer history
(``trend``, ``average``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tipl_opt.paths.spec import ParamSpec
from tipl_opt.predictors.base import Predictor, check_window


class WrappedPredictor:
    """An inner predictor (``context`` and ``horizons`` are its own) with a history of up to
    ``max_context`` = ``history`` snapshots: :class:`~tipl_opt.optimizer.TIPLOptimizer` keeps
    that many, moved along with every jump, and jumps as soon as ``context`` are there.
    ``inner``: a predictor or anything :func:`~tipl_opt.predictors.load_predictor` takes."""

    def __init__(self, inner: Predictor | str, history: int) -> None:
        if isinstance(inner, str):
            from tipl_opt.optimizer import resolve_predictor

            inner = resolve_predictor(inner)
        if history < inner.context:
            raise ValueError(f"history ({history}) must hold at least the inner predictor's "
                             f"context ({inner.context})")
        self.inner, self.max_context = inner, history

    @property
    def context(self) -> int:
        return self.inner.context

    @property
    def horizons(self) -> tuple[int, ...]:
        return tuple(getattr(self.inner, "horizons", (1,)))

    def inner_move(self, window: torch.Tensor, steps: torch.Tensor | None,
                   specs: Sequence[ParamSpec], horizon: int
                   ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(the history [n, P] float32, its steps [n] or None, the inner predictor's move [P]
        from the newest snapshot): the newest ``max_context`` snapshots of ``window``, without
        the older part up to a non-finite one (non-finite snapshots in the inner predictor's
        own window are refused, as :func:`~tipl_opt.predictors.check_window` does)."""
        check_window(window, self.context, horizon, specs)
        w = window[-self.max_context:].to(torch.float32)
        s = None if steps is None else steps[-self.max_context:]
        bad = ~torch.isfinite(w).all(dim=1)
        if bool(bad.any()):  # the older part of the history is unusable: drop it
            first = int(torch.nonzero(bad)[-1]) + 1
            w, s = w[first:], None if s is None else s[first:]
        k = self.context
        move = self.inner.predict(w[-k:], None if s is None else s[-k:], specs, horizon) - w[-1]
        return w, s, move
