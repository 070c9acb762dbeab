"""Predictors: the linear baseline, temporal-SVD tokens, the TIPL model and its checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tipl_opt.errors import PluginNotFoundError, TiplError
from tipl_opt.paths import ParamSpec
from tipl_opt.predictors import (
    LinearPredictor,
    Predictor,
    TIPLConfig,
    TIPLPredictor,
    layer_groups,
    load_predictor,
    tokenize,
)

SPECS = [ParamSpec("l1.weight", (16, 4), "actor"), ParamSpec("l1.bias", (16,), "actor"),
         ParamSpec("log_std", (2,), "actor"), ParamSpec("v.weight", (1, 16), "critic"),
         ParamSpec("v.bias", (1,), "critic")]
P = sum(s.numel for s in SPECS)


def random_walk(k: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(k, P, generator=g).cumsum(dim=0)


def test_linear_is_exact_on_a_straight_path() -> None:
    g = torch.Generator().manual_seed(1)
    origin, velocity = torch.randn(P, generator=g), torch.randn(P, generator=g)
    window = origin + torch.arange(8.0)[:, None] * velocity
    for h in (1, 3, 10):
        torch.testing.assert_close(LinearPredictor(8).predict(window, None, SPECS, h),
                                   origin + (7 + h) * velocity, rtol=1e-5, atol=1e-4)


def test_linear_uses_the_step_spacing() -> None:
    steps = torch.tensor([0.0, 100, 200, 400])  # uneven: the mean interval is 133.3
    velocity = torch.randn(P)
    window = steps[:, None] / 100 * velocity
    pred = LinearPredictor(4).predict(window, steps, SPECS, 3)
    torch.testing.assert_close(pred, (400 + 3 * 400 / 3) / 100 * velocity, rtol=1e-4, atol=1e-4)


def test_linear_context_two_repeats_the_last_step() -> None:
    window = random_walk(5)
    pred = LinearPredictor(2).predict(window, None, SPECS, 1)
    torch.testing.assert_close(pred, 2 * window[-1] - window[-2])


@pytest.mark.parametrize("per_layer", [False, True])
def test_tokens_reconstruct_the_window_exactly_when_rank_is_k_minus_1(per_layer: bool) -> None:
    window = random_walk()
    tokens = tokenize(window, SPECS, rank=7, per_layer=per_layer)
    for t in range(8):
        rebuilt = tokens.decode(tokens.tokens[:, t] - tokens.tokens[:, -1])
        torch.testing.assert_close(rebuilt, window[t], rtol=1e-4, atol=1e-4)
    assert tokens.decode(torch.zeros(tokens.tokens.shape[0], 7)).equal(window[-1])


def test_tokens_are_scale_free_and_oriented_forward() -> None:
    window = random_walk()
    small = tokenize(window, SPECS, 3, per_layer=False).tokens
    large = tokenize(1000 * window + 5, SPECS, 3, per_layer=False).tokens
    torch.testing.assert_close(small, large, rtol=1e-3, atol=1e-3)
    assert torch.all(small[0, -1] >= small[0, 0])


def test_layer_groups_pair_weights_with_their_biases() -> None:
    groups = layer_groups(SPECS)
    assert [g[1].name for g in groups] == ["l1.weight", "log_std", "v.weight"]
    assert [g[2] for g in groups] == [80, 2, 17]
    assert groups[-1][0] == slice(82, 99)


@pytest.mark.parametrize("per_layer", [False, True])
def test_untrained_tipl_stays_where_it_is(per_layer: bool) -> None:
    window = random_walk()
    predictor = TIPLPredictor(TIPLConfig(per_layer=per_layer))
    assert isinstance(predictor, Predictor)
    assert predictor.predict(window, None, SPECS, 2).equal(window[-1])


@pytest.mark.parametrize("per_layer", [False, True])
def test_untrained_residual_tipl_is_linear_extrapolation(per_layer: bool) -> None:
    window = random_walk()
    steps = torch.tensor([0.0, 10, 20, 35, 40, 50, 60, 75])  # uneven spacing counts too
    predictor = TIPLPredictor(TIPLConfig(per_layer=per_layer, residual=True))
    for h in (1, 3, 8):  # 3 lies between two heads
        torch.testing.assert_close(predictor.predict(window, steps, SPECS, h),
                                   LinearPredictor(8).predict(window, steps, SPECS, h),
                                   rtol=0, atol=1e-4)


def test_residual_is_part_of_the_checkpoint(tmp_path: Path) -> None:
    predictor = TIPLPredictor(TIPLConfig(context=6, horizons=(1, 4), residual=True))
    torch.nn.init.normal_(predictor.net.head.weight, std=0.1)
    window = random_walk(6)
    predictor.save(tmp_path / "ckpt")
    loaded = load_predictor(tmp_path / "ckpt")
    assert isinstance(loaded, TIPLPredictor) and loaded.config.residual
    assert "residual" in repr(loaded)
    torch.testing.assert_close(loaded.predict(window, None, SPECS, 4),
                               predictor.predict(window, None, SPECS, 4), rtol=0, atol=0)


def test_tipl_save_load_gives_identical_predictions(tmp_path: Path) -> None:
    torch.manual_seed(0)
    predictor = TIPLPredictor(TIPLConfig(context=6, horizons=(1, 3), per_layer=True))
    torch.nn.init.normal_(predictor.net.head.weight, std=0.1)  # make the output non-trivial
    window = random_walk(6)
    before = predictor.predict(window, None, SPECS, 3)
    assert not before.equal(window[-1])
    predictor.save(tmp_path / "ckpt", note="test")
    loaded = load_predictor(tmp_path / "ckpt")
    assert isinstance(loaded, TIPLPredictor)
    assert loaded.config == predictor.config and loaded.info["note"] == "test"
    torch.testing.assert_close(loaded.predict(window, None, SPECS, 3), before, rtol=0, atol=0)
    interpolated = loaded.predict(window, None, SPECS, 2)  # between the trained horizons
    assert torch.all(torch.isfinite(interpolated))


def test_checkpoint_with_an_unknown_version_is_refused(tmp_path: Path) -> None:
    TIPLPredictor().save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["format_version"] = 42
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(TiplError, match="unknown predictor checkpoint version 42"):
        load_predictor(tmp_path)


def test_truncated_checkpoint_weights_are_a_clear_error(tmp_path: Path) -> None:
    TIPLPredictor().save(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(TiplError, match="cannot be loaded"):
        load_predictor(tmp_path)


def test_window_shorter_than_the_context_is_a_clear_error() -> None:
    with pytest.raises(TiplError, match="needs a context of 8"):
        TIPLPredictor().predict(random_walk(5), None, SPECS, 1)


def test_spec_that_does_not_match_the_window_is_a_clear_error() -> None:
    with pytest.raises(TiplError, match="predictor and policy do not match"):
        TIPLPredictor().predict(random_walk(), None, SPECS[:2], 1)


def test_horizon_outside_the_trained_range_is_refused() -> None:
    with pytest.raises(TiplError, match="horizons"):
        TIPLPredictor(TIPLConfig(horizons=(1, 2))).predict(random_walk(), None, SPECS, 5)


def test_load_predictor_by_name_and_unknown_names() -> None:
    assert isinstance(load_predictor("linear"), LinearPredictor)
    assert load_predictor("linear", context=3).context == 3
    with pytest.raises(PluginNotFoundError, match="Unknown predictor 'nope'"):
        load_predictor("nope")


def test_config_is_validated_eagerly() -> None:
    with pytest.raises(ValueError, match="rank"):
        TIPLConfig(context=4, rank=4)
    with pytest.raises(ValueError, match="horizons"):
        TIPLConfig(horizons=(4, 2))


def _broken_checkpoint(tmp_path: Path, config: object) -> Path:
    folder = TIPLPredictor(TIPLConfig(d_model=16, heads=2)).save(tmp_path / "ckpt")
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _valid_config(tmp_path: Path) -> dict:  # type: ignore[type-arg]
    folder = TIPLPredictor(TIPLConfig(d_model=16, heads=2)).save(tmp_path / "valid")
    return json.loads((folder / "config.json").read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda c: [c], "must hold a JSON object, got list"),
    (lambda c: "tipl", "must hold a JSON object, got str"),
    (lambda c: {k: v for k, v in c.items() if k != "model"}, "has no 'model' field"),
    (lambda c: {**c, "model": [8]}, "field 'model' must be a JSON object, got list"),
    (lambda c: {**c, "model": {**c["model"], "context": "eight"}}, "'model.context'"),
    (lambda c: {**c, "model": {**c["model"], "horizons": 4}}, "'model.horizons'"),
    (lambda c: {**c, "model": {**c["model"], "dmodel": 16}}, "'model.dmodel'"),
    (lambda c: {**c, "model": {**c["model"], "rank": 99}}, "rank must be in"),
    (lambda c: {**c, "predictor": 7}, "field 'predictor' must be a string"),
    (lambda c: {**c, "format": ["tipl-predictor"]}, "'format' is ['tipl-predictor']"),
])
def test_a_checkpoint_config_of_the_wrong_shape_names_the_file_and_field(
        tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    folder = _broken_checkpoint(tmp_path, edit(_valid_config(tmp_path)))
    with pytest.raises(TiplError) as info:
        load_predictor(folder)
    assert message in str(info.value)
    assert str(folder) in str(info.value)


def test_an_unreadable_checkpoint_config_is_a_clear_error(tmp_path: Path) -> None:
    folder = TIPLPredictor(TIPLConfig(d_model=16, heads=2)).save(tmp_path / "ckpt")
    (folder / "config.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(TiplError, match=r"config.json is corrupt or unreadable"):
        load_predictor(folder)


def test_checkpoint_files_are_written_atomically(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = TIPLPredictor(TIPLConfig(d_model=16, heads=2)).save(tmp_path / "ckpt")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tipl_opt.predictors.tipl.save_file", full_disk)
    with pytest.raises(OSError):
        TIPLPredictor(TIPLConfig(d_model=16, heads=2)).save(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no temp file left
