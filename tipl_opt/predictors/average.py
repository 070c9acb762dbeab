"""``average``: an inner predictor's move, taken from the average of the newest snapshots in
the actor's output layer.

On saved SB3 PPO paths of Pusher-v5, the policy whose output layer is the mean of its newest
16 snapshots (the hidden layers as they are) returns more than the newest weights, and more
than 8 further snapshots of training gain there. Online, as the start of every jump, it did
not pay: the KL check shortened nearly every such jump and the runs were even with the
default's; with a looser check they fell behind, and averaging the critic's value head too
broke PPO (docs/benchmarks.md, "Averaged weights"). Kept so that the measurement can be
repeated. It predicts

    last + inner(window) - last + weight * (mean(history) - last) on the output layers

that is, the inner predictor's move (from its own short window, as without this wrapper),
started from the history's mean instead of the newest snapshot in the actor's output layer:
its last two-dimensional parameter (in flatten order) and the one-dimensional ones right after
it (its bias). ``roles`` names other roles to average (``None``: every role, the critic's
value head too), ``layers="all"`` every parameter of them instead. Needs no
training of its own.

``context`` (the fewest snapshots it predicts from) is the inner predictor's; ``max_context``
(= ``history``) tells :class:`~tipl_opt.optimizer.TIPLOptimizer` to keep that many snapshots,
moved along with every jump, and to jump as soon as ``context`` of them are there; until the
history is full the mean uses what it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from tipl_opt.paths.spec import ParamSpec
from tipl_opt.predictors.base import Predictor
from tipl_opt.predictors.wrapped import WrappedPredictor


def output_mask(specs: Sequence[ParamSpec], roles: Sequence[str] | None = None
                ) -> torch.Tensor:
    """Bool [P]: the coordinates of the output layer of each role (of ``roles``; ``None``:
    every role), its last two-dimensional parameter in flatten order and the one-dimensional
    parameters of the same role right after it. A role without a two-dimensional parameter has
    none."""
    last: dict[str, int] = {}
    for i, spec in enumerate(specs):
        if len(spec.shape) == 2 and (roles is None or spec.role in roles):
            last[spec.role] = i
    chosen = set(last.values())
    for role, i in last.items():
        j = i + 1
        while j < len(specs) and specs[j].role == role and len(specs[j].shape) == 1:
            chosen.add(j)
            j += 1
    mask = [torch.full((spec.numel,), i in chosen, dtype=torch.bool)
            for i, spec in enumerate(specs)]
    return torch.cat(mask) if mask else torch.zeros(0, dtype=torch.bool)


class AveragePredictor(WrappedPredictor):
    """``inner``'s move, started from the mean of the newest ``history`` snapshots instead of
    the newest snapshot in the output layers of ``roles`` (``None``: every role;
    ``layers="all"``: in every parameter of those roles);
    ``weight`` in [0, 1] scales that correction (0: the inner predictor alone). ``inner``: a
    predictor or anything :func:`~tipl_opt.predictors.load_predictor` takes (default: the
    embedded default)."""

    name = "average"

    def __init__(self, inner: Predictor | str = "default", history: int = 16,
                 weight: float = 1.0, layers: Literal["output", "all"] = "output",
                 roles: Sequence[str] | None = ("actor",)) -> None:
        if not 0 <= weight <= 1:
            raise ValueError(f"weight must be in [0, 1], got {weight}")
        if layers not in ("output", "all"):
            raise ValueError(f"layers must be 'output' or 'all', got {layers!r}")
        super().__init__(inner, history)
        self.weight = weight
        self.layers, self.roles = layers, None if roles is None else tuple(roles)
        self._mask: tuple[tuple[ParamSpec, ...], torch.Tensor] | None = None

    def mask(self, specs: Sequence[ParamSpec]) -> torch.Tensor:
        """Bool [P]: the coordinates that are averaged (cached per spec list)."""
        key = tuple(specs)
        if self._mask is None or self._mask[0] != key:
            if self.layers == "output":
                mask = output_mask(specs, self.roles)
            else:
                mask = torch.cat([torch.full((s.numel,), self.roles is None or s.role in
                                             self.roles, dtype=torch.bool) for s in specs])
            self._mask = (key, mask)
        return self._mask[1]

    def predict(self, window: torch.Tensor, steps: torch.Tensor | None,
                specs: Sequence[ParamSpec], horizon: int) -> torch.Tensor:
        w, _, move = self.inner_move(window, steps, specs, horizon)
        last = w[-1]
        centre = w.to(torch.float64).mean(dim=0).to(torch.float32)
        mask = self.mask(specs).to(w.device)
        return last + move + self.weight * torch.where(mask, centre - last,
                                                       torch.zeros_like(last))

    def __repr__(self) -> str:
        return (f"AveragePredictor(inner={getattr(self.inner, 'name', self.inner)!r}, "
                f"history={self.max_context}, weight={self.weight}, layers={self.layers!r}, "
                f"roles={self.roles!r})")
