"""Temporal-SVD tokens: a window of weights [K, P] becomes a few coordinates per snapshot.

For each group of weights (the whole vector, or one layer in the per-layer variant) the window
is centred over time and decomposed, ``X = W - mean = U S V^T``; the rows of ``V`` are the major
and minor directions of the path, and snapshot t becomes its coordinates ``U[t] S`` along the top
``r`` of them. Coordinates are divided by the group's RMS deviation from the window mean, so one
model serves small and large policies; each direction's sign is fixed so the path moves forward
along it. A prediction is a change of coordinates added to the *last* snapshot: zero means stay.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tipl_opt.paths.spec import ParamSpec

ROLES = ("actor", "critic", "q")
DESCRIPTOR_DIM = 3 + len(ROLES) + 1
_SUFFIX = re.compile(r"(\.|^)(weight|bias)$")


def layer_groups(specs: Sequence[ParamSpec]) -> list[tuple[slice, ParamSpec, int]]:
    """Split the flat vector into layers: consecutive tensors whose names differ only by a
    ``weight``/``bias`` suffix form one layer. Returns (slice, first spec, element count)."""
    groups: list[tuple[slice, ParamSpec, int]] = []
    offset, key_prev = 0, None
    for spec in specs:
        key = _SUFFIX.sub("", spec.name)
        if groups and key == key_prev:
            start = groups[-1][0].start
            groups[-1] = (slice(start, offset + spec.numel), groups[-1][1],
                          groups[-1][2] + spec.numel)
        else:
            groups.append((slice(offset, offset + spec.numel), spec, spec.numel))
        offset += spec.numel
        key_prev = key
    return groups


def _descriptor(numel: int, role: str, depth: float, is_global: bool) -> list[float]:
    roles = [1.0 if role == r else 0.0 for r in ROLES]
    other = 0.0 if role in ROLES else 1.0
    return [math.log10(max(numel, 1)) / 7.0, depth, 1.0 if is_global else 0.0, *roles, other]


@dataclass
class WindowTokens:
    """A window in token form. G groups, K snapshots, r directions.

    ``tokens`` [G, K, r] normalised coordinates; ``descriptors`` [G, DESCRIPTOR_DIM];
    ``bases`` per group [r, P_g] orthonormal directions; ``scales`` [G];
    ``slices`` where each group lives in the flat vector; ``last`` the last snapshot [P].
    """

    tokens: torch.Tensor
    descriptors: torch.Tensor
    bases: list[torch.Tensor]
    scales: torch.Tensor
    slices: list[slice]
    last: torch.Tensor

    def decode(self, delta: torch.Tensor) -> torch.Tensor:
        """Weights from a change of normalised coordinates ``delta`` [G, r]: [P]."""
        out = self.last.clone()
        for g, (sl, basis) in enumerate(zip(self.slices, self.bases, strict=True)):
            out[sl] += self.scales[g] * (delta[g, : basis.shape[0]].to(basis) @ basis)
        return out

    def encode_target(self, future: torch.Tensor) -> torch.Tensor:
        """Normalised coordinate change from ``last`` towards ``future`` [P]: [G, r]."""
        g_count, _, r = self.tokens.shape
        target = torch.zeros(g_count, r, dtype=torch.float32, device=self.last.device)
        for g, (sl, basis) in enumerate(zip(self.slices, self.bases, strict=True)):
            if basis.shape[0]:
                step = future[sl] - self.last[sl]
                target[g, : basis.shape[0]] = (step @ basis.T) / self.scales[g]
        return target


def _temporal_svd(x: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Centred window part [K, n] -> (coords [K, r'], basis [r', n], scale), r' <= rank.

    The SVD goes through the K x K Gram matrix (cost K^2 n, nothing of size n x n); only that
    small matrix is decomposed in float64.
    """
    k = x.shape[0]
    centred = x - x.mean(dim=0, keepdim=True)
    gram = (centred @ centred.T).double()
    evals, evecs = torch.linalg.eigh(gram)  # ascending
    evals, evecs = evals.flip(0)[:rank], evecs.flip(1)[:, :rank]
    total = max(float(gram.trace()), 0.0)
    scale = math.sqrt(total / k)
    keep = evals > max(total, 1e-300) * 1e-10
    evals, evecs = evals[keep], evecs[:, keep]
    sing = evals.clamp(min=0).sqrt()
    basis = (evecs.T.to(x.dtype) @ centred) / sing[:, None].to(x.dtype)
    coords = (evecs * sing[None, :]).to(x.dtype)
    sign = torch.sign(coords[-1] - coords[0])
    sign[sign == 0] = 1
    return coords * sign, basis * sign[:, None], scale


def tokenize(window: torch.Tensor, specs: Sequence[ParamSpec], rank: int, *,
             per_layer: bool) -> WindowTokens:
    """Turn a [K, P] window into :class:`WindowTokens` with ``rank`` directions per group.

    With ``rank = K - 1`` the tokens (with the means) reconstruct the window exactly.
    """
    w = window.to(torch.float32)
    k = w.shape[0]
    if per_layer:
        groups = layer_groups(specs)
        parts = [(sl, spec.role, n, i / max(len(groups) - 1, 1), False)
                 for i, (sl, spec, n) in enumerate(groups)]
    else:
        roles = {s.role for s in specs}
        role = roles.pop() if len(roles) == 1 else "mixed"
        parts = [(slice(0, w.shape[1]), role, w.shape[1], 0.0, True)]
    tokens = torch.zeros(len(parts), k, rank, device=w.device)
    scales = torch.ones(len(parts), device=w.device)
    bases, slices, descs = [], [], []
    for g, (sl, role, n, depth, is_global) in enumerate(parts):
        coords, basis, scale = _temporal_svd(w[:, sl], rank)
        if scale > 0:
            tokens[g, :, : coords.shape[1]] = coords / scale
            scales[g] = scale
        bases.append(basis)
        slices.append(sl)
        descs.append(_descriptor(n, role, depth, is_global))
    return WindowTokens(tokens=tokens, descriptors=torch.tensor(descs, device=w.device),
                        bases=bases, scales=scales, slices=slices, last=w[-1].clone())
