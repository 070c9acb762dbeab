"""Pretraining batches through a DataLoader: worker processes prepare the windows, the stream is
fixed by the seed and the worker count, and the model learns from it as in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from synthetic import make_dataset

from tipl_opt.predictors import TIPLConfig
from tipl_opt.pretrain import PretrainConfig, pretrain
from tipl_opt.pretrain.loader import WindowBatches, make_loader

SMALL = TIPLConfig(context=6, horizons=(1, 2, 4), d_model=32, layers=2, heads=4)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("paths"), runs=4)


def batches(dataset: Path, seed: int = 0) -> WindowBatches:
    return WindowBatches(sorted(dataset.glob("*.safetensors")), context=6, horizons=(1, 2, 4),
                         rank=SMALL.r, per_layer=SMALL.per_layer, batch_size=8, seed=seed,
                         start_step=0, generator=torch.Generator().manual_seed(seed))


def test_workers_hand_out_the_same_stream_for_the_same_seed(dataset: Path) -> None:
    def first(n: int, seed: int = 0) -> list[torch.Tensor]:
        loader = iter(make_loader(batches(dataset, seed), workers=2, pin_memory=False))
        return [next(loader).targets for _ in range(n)]

    a, b, other = first(4), first(4), first(4, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, other, strict=True))
    assert not torch.equal(a[0], a[1])  # the two workers draw different windows
    assert a[0].shape[0] == 8


def test_in_process_loading_draws_with_the_trainers_generator(dataset: Path) -> None:
    source = batches(dataset)
    generator = torch.Generator().manual_seed(0)
    expected = [source.source().sample(generator).targets for _ in range(8)]
    batch = next(iter(make_loader(source, workers=0, pin_memory=False)))
    assert torch.equal(batch.targets, torch.stack(expected))


def test_pretraining_with_loader_workers_learns_and_is_deterministic(dataset: Path,
                                                                     tmp_path: Path) -> None:
    def run(out: Path) -> tuple[torch.nn.Module, list[float]]:
        losses: list[float] = []
        config = PretrainConfig(paths=dataset, out=out, steps=80, batch_size=16, eval_every=80,
                                device="cpu", lr=3e-3, model=SMALL, loader_workers=2)
        result = pretrain(config, lambda p: losses.append(p.train_loss))
        return result.predictor.net, losses

    net_a, losses = run(tmp_path / "a")
    net_b, _ = run(tmp_path / "b")
    assert losses[-1] < losses[0] / 2
    for (name, pa), pb in zip(net_a.state_dict().items(), net_b.state_dict().values(),
                              strict=True):
        assert torch.equal(pa, pb), name
