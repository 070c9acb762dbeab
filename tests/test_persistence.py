"""The path persistence check: the meter on straight, bent and random paths, and the optimizer
holding jumps by it."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
import torch
from torch import nn

from tipl_opt.history import WeightHistory
from tipl_opt.jumps import JumpConfig, JumpReport
from tipl_opt.optimizer import TIPLOptimizer
from tipl_opt.paths import ParamSpec
from tipl_opt.persistence import PersistenceMeter, RolePersistence, log_decisions, settled
from tipl_opt.predictors import LinearPredictor


def _measure(points: torch.Tensor, meter: PersistenceMeter) -> list[float]:
    history = WeightHistory(meter.context, points.shape[1])
    found = []
    for i, point in enumerate(points):
        history.push(point, i)
        cosine = meter.observe(*history.window())
        if cosine is not None:
            found.append(cosine)
    return found


def test_a_straight_path_scores_one_and_a_random_walk_near_zero() -> None:
    line = torch.arange(30.0)[:, None] * torch.tensor([1.0, -2.0, 0.5])
    meter = PersistenceMeter(context=4, windows=5, horizon=3)
    cosines = _measure(line, meter)
    # a cosine for every window of 4 whose move 3 snapshots on is in: 30 - 4 - 3 + 1
    assert len(cosines) == 24
    assert cosines == pytest.approx([1.0] * 24, abs=1e-5)
    assert meter.value == pytest.approx(1.0, abs=1e-5)

    walk = torch.randn(400, 50, generator=torch.Generator().manual_seed(0)).cumsum(0)
    meter = PersistenceMeter(context=8, windows=32)
    _measure(walk, meter)
    assert meter.value is not None and abs(meter.value) < 0.35


def test_value_waits_for_its_windows_and_takes_the_newest() -> None:
    meter = PersistenceMeter(context=2, windows=3, horizon=1)
    # straight for 6 snapshots, then back and forth: the newest cosines are -1
    points = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [4.0], [5.0], [4.0]])
    history = WeightHistory(2, 1)
    values = []
    for i, point in enumerate(points):
        history.push(point, i)
        meter.observe(*history.window())
        values.append(meter.value)
    assert values[:4] == [None] * 4  # a cosine from snapshot 2 on; 3 needed
    assert values[4] == pytest.approx(1.0)
    assert values[-1] == pytest.approx(-1.0)


def test_translate_keeps_the_gradient_steps_path() -> None:
    """A kept window moved by a jump: the pending start points move with it, so the jump
    itself is not counted as the path's move."""
    meter = PersistenceMeter(context=3, windows=1, horizon=2)
    history = WeightHistory(3, 2)
    step = torch.tensor([1.0, 0.0])
    point = torch.zeros(2)
    for i in range(6):
        if i == 4:  # a jump sideways, applied to the window and the meter alike
            jump = torch.tensor([0.0, 50.0])
            point = point + jump
            history.translate(jump)
            meter.translate(jump)
        history.push(point, i)
        meter.observe(*history.window())
        point = point + step
    assert meter.value == pytest.approx(1.0, abs=1e-5)


def test_meter_state_round_trips() -> None:
    walk = torch.randn(40, 6, generator=torch.Generator().manual_seed(1)).cumsum(0)
    a = PersistenceMeter(context=4, windows=5, horizon=3)
    history = WeightHistory(4, 6)
    for i, p in enumerate(walk[:20]):
        history.push(p, i)
        a.observe(*history.window())
    b = PersistenceMeter(context=4, windows=5, horizon=3)
    b.load_state_dict(a.state_dict())
    for i, p in enumerate(walk[20:], start=20):
        history.push(p, i)
        window = history.window()
        assert a.observe(*window) == b.observe(*window)
    assert a.value == b.value is not None


def _train(gradients: torch.Tensor, min_persistence: float | None) -> TIPLOptimizer:
    param = nn.Parameter(torch.zeros(gradients.shape[1]))
    config = {"snapshot_every": 1, "context": 4, "min_persistence": min_persistence,
              "persistence_windows": 8}
    opt = TIPLOptimizer([param], "linear", base_class=torch.optim.SGD, lr=0.1, config=config)
    for g in gradients:
        opt.zero_grad()
        (param * g).sum().backward()
        opt.step()
    return opt


def test_optimizer_holds_jumps_on_a_random_walk_and_not_on_a_straight_path() -> None:
    steps = 200
    noise = torch.randn(steps, 20, generator=torch.Generator().manual_seed(0))
    straight = torch.ones(steps, 20)

    held = _train(noise, 0.5)
    assert held.persistence is not None and held.persistence.value is not None
    assert held.persistence.value < 0.5
    assert held.counters["jumps_held"] > 0
    free = _train(noise, None)
    assert free.persistence is None and free.counters["jumps_held"] == 0
    assert held.counters["jumps_tried"] < free.counters["jumps_tried"]

    keeps = _train(straight, 0.5)
    assert keeps.persistence is not None
    assert keeps.persistence.value == pytest.approx(1.0, abs=1e-4)
    assert keeps.counters["jumps_held"] == 0
    assert keeps.counters["jumps_tried"] == free.counters["jumps_tried"]


def test_optimizer_state_carries_the_meter() -> None:
    noise = torch.randn(120, 5, generator=torch.Generator().manual_seed(2))
    opt = _train(noise, 0.5)
    assert opt.persistence is not None
    state = opt.state_dict()
    assert "persistence" in state["tipl"]
    param = nn.Parameter(torch.zeros(5))
    other = TIPLOptimizer([param], "linear", base_class=torch.optim.SGD, lr=0.1,
                          config=JumpConfig.model_validate(state["tipl"]["config"]))
    other.load_state_dict(state)
    assert other.persistence is not None
    assert other.persistence.value == opt.persistence.value
    assert list(other.persistence.cosines) == list(opt.persistence.cosines)


def test_a_meter_state_of_other_weights_is_refused_and_changes_nothing() -> None:
    opt = _train(torch.randn(120, 5, generator=torch.Generator().manual_seed(3)), 0.5)
    state = opt.state_dict()
    other = _train(torch.randn(120, 6, generator=torch.Generator().manual_seed(3)), 0.5)
    assert other.persistence is not None
    before = list(other.persistence.cosines)
    bad = {**state, "tipl": {**state["tipl"], "history": other.state_dict()["tipl"]["history"]}}
    with pytest.raises(ValueError, match="persistence check"):
        other.load_state_dict(bad)
    assert other.persistence is not None and list(other.persistence.cosines) == before


class _StartRecorder:
    """``linear`` that also records the weights each jump starts from (the newest snapshot)."""

    def __init__(self) -> None:
        self.inner = LinearPredictor(4)
        self.name, self.context, self.horizons = "linear", 4, self.inner.horizons
        self.starts: list[torch.Tensor] = []

    def predict(self, window: torch.Tensor, steps: torch.Tensor | None,
                specs: Sequence[ParamSpec], horizon: int) -> torch.Tensor:
        self.starts.append(window[-1].clone())
        return self.inner.predict(window, steps, specs, horizon)


def _train_roles(steps: int, scope: str) -> tuple[TIPLOptimizer, _StartRecorder,
                                                   list[tuple[torch.Tensor, JumpReport]]]:
    """An actor whose gradients are noise (its path wanders) and a critic whose gradient is
    constant (its path is straight), both trained by one optimizer."""
    net = nn.ModuleDict({"pi": nn.Linear(4, 5, bias=False), "vf": nn.Linear(4, 1, bias=False)})
    recorder = _StartRecorder()
    config = {"snapshot_every": 1, "context": 4, "min_persistence": 0.5,
              "persistence_windows": 8, "persistence_scope": scope}
    opt = TIPLOptimizer(net, recorder, base_class=torch.optim.SGD, lr=0.1, config=config)
    after: list[tuple[torch.Tensor, JumpReport]] = []
    opt.register_jump_hook(lambda o, report: after.append((o.flat_weights(), report)))
    noise = torch.randn(steps, 5, 4, generator=torch.Generator().manual_seed(4))
    for g in noise:
        opt.zero_grad()
        ((net["pi"].weight * g).sum() + net["vf"].weight.sum()).backward()
        opt.step()
    return opt, recorder, after


def test_role_scope_jumps_the_straight_role_and_leaves_the_wandering_one() -> None:
    opt, recorder, after = _train_roles(120, "role")
    assert isinstance(opt.persistence, RolePersistence)
    values = opt.persistence.values
    assert values["critic"] == pytest.approx(1.0, abs=1e-4)
    assert values["actor"] is not None and values["actor"] < 0.5
    actor = torch.tensor([s.role == "actor" for s in opt.specs for _ in range(s.numel)])
    held = [(start, weights) for start, (weights, report) in zip(recorder.starts, after,
                                                                strict=True)
            if report.held_roles == ("actor",)]
    assert held and opt.counters["role_held_actor"] == len(held)
    assert opt.counters["jumps_held"] == 0  # the critic still jumps
    for start, weights in held:
        assert torch.equal(weights[actor], start[actor])
        assert not torch.equal(weights[~actor], start[~actor])
    whole, _, _ = _train_roles(120, "all")  # the whole path: the actor's noise holds it all
    assert whole.counters["jumps_held"] > 0 and "role_held_actor" not in whole.counters


def test_role_persistence_state_round_trips_and_refuses_other_roles() -> None:
    opt, _, _ = _train_roles(60, "role")
    state = opt.state_dict()
    again, _, _ = _train_roles(10, "role")
    again.load_state_dict(state)
    assert isinstance(again.persistence, RolePersistence)
    assert isinstance(opt.persistence, RolePersistence)
    assert again.persistence.values == opt.persistence.values
    meter = RolePersistence({"actor": torch.ones(3, dtype=torch.bool)}, context=4)
    with pytest.raises(ValueError, match=r"saved for roles \['actor', 'critic'\]"):
        meter.load_state_dict(state["tipl"]["persistence"])


def test_a_once_meter_keeps_its_first_decision_and_stops_measuring() -> None:
    """Straight for the first windows, then a random walk: the rolling meter follows the walk
    down, the ``once`` meter keeps the straight start's 1.0 and measures nothing more."""
    gen = torch.Generator().manual_seed(5)
    straight = torch.arange(20.0)[:, None] * torch.ones(1, 30)
    walk = straight[-1] + torch.randn(200, 30, generator=gen).cumsum(0)
    path = torch.cat([straight, walk])
    rolling = PersistenceMeter(context=4, windows=6, horizon=3)
    once = PersistenceMeter(context=4, windows=6, horizon=3, once=True)
    assert not once.settled
    found = _measure(path, once)
    _measure(path, rolling)
    assert len(found) == 6 and once.settled and not rolling.settled
    assert once.value == pytest.approx(1.0, abs=1e-5)
    assert rolling.value is not None and rolling.value < 0.5
    assert not once._pending  # nothing is kept for windows it will never score
    assert "once=True" in repr(once)


def _train_late_straight(mode: str, steps: int = 160) -> TIPLOptimizer:
    """An actor whose gradients are noise for its first 60 steps and constant after, beside a
    straight critic, under the per-role check in ``mode``."""
    net = nn.ModuleDict({"pi": nn.Linear(4, 5, bias=False), "vf": nn.Linear(4, 1, bias=False)})
    config = {"snapshot_every": 1, "context": 4, "min_persistence": 0.5,
              "persistence_windows": 8, "persistence_scope": "role",
              "persistence_mode": mode}
    opt = TIPLOptimizer(net, "linear", base_class=torch.optim.SGD, lr=0.1, config=config)
    noise = torch.randn(steps, 5, 4, generator=torch.Generator().manual_seed(6))
    noise[60:] = 1.0
    for g in noise:
        opt.zero_grad()
        ((net["pi"].weight * g).sum() + net["vf"].weight.sum()).backward()
        opt.step()
    return opt


def test_once_mode_leaves_a_role_out_for_the_rest_of_the_run(
        caplog: pytest.LogCaptureFixture) -> None:
    rolling = _train_late_straight("rolling")
    with caplog.at_level(logging.INFO, logger="tipl_opt.persistence"):
        once = _train_late_straight("once")
    said = [r.getMessage() for r in caplog.records if r.name == "tipl_opt.persistence"]
    # one line per network, when it is decided: the actor left out, the critic kept
    assert len(said) == 2
    assert any(m.startswith("TIPL: the actor path") and "left out of every later jump" in m
               for m in said)
    assert any(m.startswith("TIPL: the critic path kept its direction 1.00")
               and "it keeps jumping" in m for m in said)
    assert isinstance(once.persistence, RolePersistence)
    assert isinstance(rolling.persistence, RolePersistence)
    # the rolling check lets the actor jump again once its path is straight; once does not
    assert rolling.persistence.values["actor"] == pytest.approx(1.0, abs=1e-3)
    first = once.persistence.values["actor"]
    assert first is not None and first < 0.5
    assert once.counters["role_held_actor"] > rolling.counters["role_held_actor"] > 0
    assert once.counters["jumps_held"] == 0  # the critic jumps all along
    # the decision round-trips: a fresh optimizer loaded from the state keeps it
    again = _train_late_straight("once", steps=10)
    again.load_state_dict(once.state_dict())
    assert isinstance(again.persistence, RolePersistence)
    assert again.persistence.values == once.persistence.values
    assert all(meter.settled for meter in again.persistence.meters.values())


def test_persistence_mode_is_validated() -> None:
    with pytest.raises(ValueError, match="persistence_mode"):
        JumpConfig.model_validate({"persistence_mode": "sometimes"})


def test_a_whole_path_decision_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    walk = torch.randn(80, 20, generator=torch.Generator().manual_seed(7)).cumsum(0)
    meter = PersistenceMeter(context=4, windows=6, horizon=3, once=True)
    schedule = JumpConfig.model_validate({"min_persistence": 0.9,
                                          "persistence_windows": 6}).schedule
    history = WeightHistory(4, 20)
    with caplog.at_level(logging.INFO, logger="tipl_opt.persistence"):
        for i, point in enumerate(walk):
            history.push(point, i)
            before = settled(meter)
            meter.observe(*history.window())
            log_decisions(meter, before, schedule)
    assert meter.value is not None and settled(meter) == {"whole": meter.value}
    assert settled(PersistenceMeter(context=4)) == {} and settled(None) == {}
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "the whole path" in said[0]
    assert said[0].endswith("every later jump is held")
