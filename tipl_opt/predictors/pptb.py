"""``pptb``: trim the oscillating minor directions of the path, extrapolate along the major ones.

After "The Ladder in Chaos" (Tang et al., NeurIPS 2024; Policy Path Trimming and Boosting). The
window is centred and decomposed by temporal SVD (as the tokens of ``tipl`` are, see
:mod:`tipl_opt.predictors.tokens`): ``W - mean = C V`` with coordinates ``C`` [K, r] along
orthonormal directions ``V`` [r, P]. Each direction's coordinate path gets a least-squares trend
slope and a *detour ratio*, the distance travelled along it over the net change
(1 = monotone; a pure oscillation has a huge one). The top ``major`` directions by singular
value whose detour ratio is at most ``max_detour`` are the major ones; every other direction is
trimmed to the window mean (its oscillation is removed). The prediction is

    mean + sum over major i of (C[-1, i] + boost * slope_i * h) V_i

that is: stay where the last snapshot is along the major directions and move on along their
trend, ``boost`` times as far; drop the last snapshot's offset along the minor ones. It is exact
on a straight path (one monotone direction) with ``boost = 1``; with every direction major and
``boost = 1`` it is the last snapshot plus ``linear``'s step; when no direction is major it
predicts "no move" (the last snapshot): there is no trend to follow. Needs no training.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tipl_opt.paths.spec import ParamSpec
from tipl_opt.predictors.base import check_window, spacing
from tipl_opt.predictors.tokens import _temporal_svd


class PPTBPredictor:
    """Temporal-SVD trend extrapolation with trimmed minor and boosted major directions.

    ``context`` snapshots (K >= 3); ``major`` the most directions that may count as major;
    ``max_detour`` the largest detour ratio a major direction may have; ``boost`` the factor
    on the predicted move along the major directions (1: plain extrapolation of their trend).
    """

    name = "pptb"
    horizons: tuple[int, ...] = (1,)
    """Any horizon extrapolates equally well; the optimizer jumps 1 interval unless told."""

    def __init__(self, context: int = 8, major: int = 3, max_detour: float = 2.0,
                 boost: float = 1.25) -> None:
        if context < 3:
            raise ValueError(f"pptb needs a context >= 3 to tell a trend from noise, got {context}")
        if major < 1:
            raise ValueError(f"major must be >= 1, got {major}")
        if max_detour < 1:
            raise ValueError(f"max_detour is a ratio >= 1 (1 = monotone), got {max_detour}")
        if boost <= 0:
            raise ValueError(f"boost must be > 0, got {boost}")
        self.context = context
        self.major = major
        self.max_detour = max_detour
        self.boost = boost

    def major_directions(self, coords: torch.Tensor) -> torch.Tensor:
        """Boolean mask [r] over the SVD coordinates [K, r] (largest singular value first):
        which directions are major (within the top ``major`` and monotone enough)."""
        travelled = (coords[1:] - coords[:-1]).abs().sum(dim=0)
        net = (coords[-1] - coords[0]).abs()
        detour = travelled / net.clamp(min=torch.finfo(coords.dtype).tiny)
        mask = detour <= self.max_detour
        mask[self.major:] = False
        return mask

    def predict(self, window: torch.Tensor, steps: torch.Tensor | None,
                specs: Sequence[ParamSpec], horizon: int) -> torch.Tensor:
        check_window(window, self.context, horizon)
        w = window[-self.context:].to(torch.float32)
        k = w.shape[0]
        coords, basis, _ = _temporal_svd(w, k - 1)
        major = self.major_directions(coords)
        if not bool(major.any()):
            return w[-1].clone()
        t = spacing(steps, k, w.device).to(coords.dtype)
        tc = t - t.mean()
        c = coords[:, major]
        slope = (tc[:, None] * c).sum(dim=0) / (tc * tc).sum()  # coords are centred over time
        target = c[-1] + self.boost * slope * float(horizon)
        mean = w.mean(dim=0)
        return mean + target.to(w.dtype) @ basis[major]

    def __repr__(self) -> str:
        return (f"PPTBPredictor(context={self.context}, major={self.major}, "
                f"max_detour={self.max_detour}, boost={self.boost})")
