"""Stream training windows from a memory-mapped path dataset: (run, start) -> window + futures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import torch

from tipl_opt.paths.reader import LearningPath
from tipl_opt.paths.spec import ParamSpec
from tipl_opt.predictors.base import spacing
from tipl_opt.predictors.tokens import WindowTokens, tokenize


@dataclass
class Sample:
    """One window of one run, tokenised, with its targets at every horizon.

    ``targets`` [G, H, r] normalised coordinate changes; ``mask`` [H] True where the run is long
    enough to have that horizon; ``futures`` [H, P] true future weights (zeros where masked).
    """

    run: int
    start: int
    specs: list[ParamSpec]
    window: torch.Tensor
    steps: torch.Tensor
    tokens: WindowTokens
    times: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    futures: torch.Tensor


class WindowSource:
    """Windows of ``context`` snapshots from ``paths``, tokenised for a TIPL model.

    Only the rows a window needs are read from disk. ``starts()`` lists every valid window;
    ``sample(generator)`` draws one uniformly over all windows of all runs.
    """

    def __init__(self, paths: Sequence[LearningPath], context: int, horizons: Sequence[int],
                 rank: int, per_layer: bool) -> None:
        self.paths = list(paths)
        self.context, self.horizons = context, tuple(horizons)
        self.rank, self.per_layer = rank, per_layer
        self.counts = [max(lp.num_snapshots - context, 0) for lp in self.paths]
        if sum(self.counts) == 0:
            raise ValueError(f"no run has more than {context} snapshots: collect longer runs or "
                             "use a shorter --context")
        self._offsets = torch.tensor(self.counts).cumsum(0)

    def __len__(self) -> int:
        return sum(self.counts)

    def starts(self) -> list[tuple[int, int]]:
        return [(i, s) for i, n in enumerate(self.counts) for s in range(n)]

    def sample(self, generator: torch.Generator) -> Sample:
        index = int(torch.randint(len(self), (1,), generator=generator))
        run = int(torch.searchsorted(self._offsets, index, right=True))
        start = index - (int(self._offsets[run - 1]) if run else 0)
        return self.get(run, start)

    def get(self, run: int, start: int) -> Sample:
        lp = self.paths[run]
        k, t_total = self.context, lp.num_snapshots
        last = start + k - 1
        rows = lp.window(start, min(k + max(self.horizons), t_total - start))
        window = rows[:k]
        env_steps = torch.from_numpy(lp.env_steps[start : start + k]).to(torch.float64)
        tokens = tokenize(window, lp.specs, self.rank, per_layer=self.per_layer)
        g = tokens.tokens.shape[0]
        targets = torch.zeros(g, len(self.horizons), self.rank)
        futures = torch.zeros(len(self.horizons), window.shape[1])
        mask = torch.zeros(len(self.horizons), dtype=torch.bool)
        for j, h in enumerate(self.horizons):
            if last + h < t_total:
                futures[j] = rows[k - 1 + h]
                targets[:, j] = tokens.encode_target(futures[j])
                mask[j] = True
        times = spacing(env_steps, k, window.device)
        return Sample(run, start, lp.specs, window, env_steps, tokens, times, targets, mask,
                      futures)


@dataclass
class Batch:
    tokens: torch.Tensor  # [B, G, K, r]
    times: torch.Tensor  # [B, K]
    descriptors: torch.Tensor  # [B, G, D]
    group_mask: torch.Tensor  # [B, G]
    targets: torch.Tensor  # [B, G, H, r]
    horizon_mask: torch.Tensor  # [B, H]

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        return Batch(*(fn(getattr(self, f.name)) for f in fields(self)))

    def pin_memory(self) -> Batch:
        """The batch in page-locked memory (what a ``DataLoader`` with ``pin_memory`` calls)."""
        return self._map(torch.Tensor.pin_memory)

    def to(self, device: torch.device) -> Batch:
        """The batch on ``device`` (asynchronous from pinned memory; a no-op on its device)."""
        return self._map(lambda t: t.to(device, non_blocking=True))


def collate(samples: Sequence[Sample]) -> Batch:
    """Stack samples, padding the group axis (per-layer windows of different policies)."""
    g = max(s.tokens.tokens.shape[0] for s in samples)
    b = len(samples)
    _, k, r = samples[0].tokens.tokens.shape
    h = samples[0].targets.shape[1]
    d = samples[0].tokens.descriptors.shape[1]
    tokens = torch.zeros(b, g, k, r)
    desc = torch.zeros(b, g, d)
    gmask = torch.zeros(b, g, dtype=torch.bool)
    targets = torch.zeros(b, g, h, r)
    for i, s in enumerate(samples):
        n = s.tokens.tokens.shape[0]
        tokens[i, :n] = s.tokens.tokens
        desc[i, :n] = s.tokens.descriptors
        gmask[i, :n] = True
        targets[i, :n] = s.targets
    return Batch(tokens, torch.stack([s.times for s in samples]), desc, gmask, targets,
                 torch.stack([s.mask for s in samples]))
