"""The predictor embedded in the package: present, documented, and usable on any policy."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from torch import nn

from tipl_opt import TIPLOptimizer, TIPLPredictor, load_predictor
from tipl_opt.paths import ParamSpec
from tipl_opt.predictors import default_predictor_path


def test_the_default_predictor_ships_small_and_self_describing() -> None:
    folder = default_predictor_path()
    assert folder is not None, "tipl_opt/assets/default_predictor is missing"
    size = sum(f.stat().st_size for f in folder.iterdir())
    assert size <= 5 * 2**20
    config = json.loads((folder / "config.json").read_text())
    assert config["format"] == "tipl-predictor"
    training = config["training"]
    assert "build_default_predictor.sh" in training["recipe"]
    sources = training["data"]["by_source"]
    assert {s.split("/")[0] for s in sources} == {"sb3", "tianshou"}
    assert len({s.split("/")[1] for s in sources}) >= 2  # several algorithms
    assert len({s.split("/")[2] for s in sources}) >= 3  # several envs
    assert set(training["val_runs"]).isdisjoint(training["train_runs"])
    assert len(config["validation"]["tipl_vs_linear"]) == len(config["model"]["horizons"])


@pytest.mark.parametrize("hidden", [(7,), (128, 128, 32)])
def test_default_predictor_predicts_for_unseen_architectures(hidden: tuple[int, ...]) -> None:
    predictor = load_predictor("default")
    assert isinstance(predictor, TIPLPredictor)
    sizes = (5, *hidden, 3)
    specs = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        specs += [ParamSpec(f"net.{i}.weight", (b, a), "actor"),
                  ParamSpec(f"net.{i}.bias", (b,), "actor")]
    p = sum(s.numel for s in specs)
    g = torch.Generator().manual_seed(0)
    drift = torch.randn(p, generator=g) * 0.01
    window = torch.randn(p, generator=g) + torch.arange(8.0)[:, None] * drift \
        + 0.001 * torch.randn(8, p, generator=g)
    prediction = predictor.predict(window, torch.arange(8.0) * 512, specs, 4)
    assert prediction.shape == (p,) and torch.all(torch.isfinite(prediction))
    assert not torch.equal(prediction, window[-1])
    moved = prediction - window[-1]
    assert float(torch.nn.functional.cosine_similarity(moved, drift, dim=0)) > 0.5


def test_tipl_optimizer_uses_the_default_predictor_by_default() -> None:
    opt = TIPLOptimizer(nn.Linear(3, 2))
    assert isinstance(opt.predictor, TIPLPredictor)
    assert opt.history.capacity == opt.predictor.context
