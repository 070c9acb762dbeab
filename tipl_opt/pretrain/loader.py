"""Batches of training windows through a torch ``DataLoader``: in this process, or prepared by
worker processes while the model trains (``--loader-workers N``).

Each batch is ``batch_size`` windows drawn uniformly over all windows of all training runs,
read from the memory-mapped learning paths and tokenised (:class:`WindowSource`), then stacked
(:func:`collate`). With ``workers=0`` the windows are drawn with the trainer's own generator,
exactly as before there was a loader, so a resumed run continues the very same stream. With
``workers > 0`` worker ``i`` draws with its own generator seeded from ``(seed, first step, i)``
and the loader hands out the workers' batches in turn: the stream is fixed by the seed, the
worker count and the step training starts (or resumes) at.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from tipl_opt.paths.reader import LearningPath
from tipl_opt.pretrain.windows import Batch, WindowSource, collate


class WindowBatches(IterableDataset[Batch]):
    """An endless stream of batches of windows of ``files`` (see the module docstring).

    Workers open the files themselves (only paths cross the process boundary), so the dataset
    works with any multiprocessing start method.
    """

    def __init__(self, files: Sequence[Path], *, context: int, horizons: Sequence[int],
                 rank: int, per_layer: bool, batch_size: int, seed: int, start_step: int,
                 generator: torch.Generator) -> None:
        self.files = [Path(f) for f in files]
        self.context, self.horizons = context, tuple(horizons)
        self.rank, self.per_layer = rank, per_layer
        self.batch_size, self.seed, self.start_step = batch_size, seed, start_step
        self.generator = generator
        """Draws the windows in this process (``workers=0``); its state is the trainer's."""

    def source(self) -> WindowSource:
        return WindowSource([LearningPath(f) for f in self.files], self.context, self.horizons,
                            self.rank, self.per_layer)

    def worker_generator(self, worker: int) -> torch.Generator:
        """The generator worker ``worker`` draws with."""
        state = np.random.SeedSequence([self.seed, self.start_step, worker]).generate_state(2)
        return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        if info is None:
            generator = self.generator
        else:
            torch.set_num_threads(1)
            generator = self.worker_generator(info.id)
        source = self.source()
        while True:
            yield collate([source.sample(generator) for _ in range(self.batch_size)])


def make_loader(batches: WindowBatches, workers: int, pin_memory: bool) -> DataLoader[Batch]:
    """A ``DataLoader`` over ``batches`` (already batched: ``batch_size=None``), with
    ``workers`` processes (0: in this process) and pinned memory for fast copies to a GPU.
    The loader's own generator is seeded, so creating it leaves torch's global RNG alone."""
    return DataLoader(batches, batch_size=None, num_workers=workers, pin_memory=pin_memory,
                      prefetch_factor=4 if workers else None,
                      generator=torch.Generator().manual_seed(batches.seed))
