"""The optimizer's parts on their own: schedule, acceptance rule, jump hooks, config sections,
and a state that does not fit."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from tipl_opt.acceptance import Backtracking, Decision, make_rule
from tipl_opt.errors import ConfigError
from tipl_opt.hookspecs import hookimpl
from tipl_opt.jumps import AcceptanceConfig, JumpConfig, JumpReport, JumpTally, ScheduleConfig
from tipl_opt.optimizer import TIPLOptimizer
from tipl_opt.plugins import get_plugin_manager
from tipl_opt.schedule import CadenceSchedule


class Line:
    """A Candidate on a 1-d line: start 0, the move ``delta``; records every fraction tried."""

    def __init__(self, delta: float) -> None:
        self.delta, self.x, self.tried = delta, 0.0, []  # type: ignore[var-annotated]
        self.relative_size = math.inf

    def write(self, fraction: float) -> None:
        self.tried.append(fraction)
        self.x = fraction * self.delta


class Farther:
    """A guard measuring how far the line moved."""

    name = "distance"

    def __init__(self, line: Line, limit: float) -> None:
        self.line, self.limit = line, limit

    def reference(self) -> None:
        pass

    def measure(self) -> float:
        return abs(self.line.x)


def test_cadence_schedule_traced_by_hand() -> None:
    schedule = CadenceSchedule(ScheduleConfig(snapshot_every=3, warmup_steps=5))
    last: int | None = None
    due = []
    for step in range(10):
        if schedule.snapshot_due(step, last):
            due.append(step)
            last = step
    assert due == [0, 3, 6, 9]
    assert not schedule.snapshot_due(4, 3) and schedule.snapshot_due(6, 3)
    assert not schedule.jump_due(4, fresh=8, context=8)  # warm-up
    assert not schedule.jump_due(6, fresh=7, context=8)
    assert schedule.jump_due(6, fresh=8, context=8)
    every2 = CadenceSchedule(ScheduleConfig(jump_every=2))
    assert not every2.jump_due(6, fresh=1, context=8) and every2.jump_due(6, fresh=2, context=8)
    assert schedule.horizon(0, longest=8) == 8


def test_whole_jumps_shorten_the_interval_only_over_the_newest_eight() -> None:
    schedule = CadenceSchedule(ScheduleConfig(jump_every=2, whole_jump_every=1))
    assert schedule.interval(8, [True] * 7) == 2  # fewer than 8 jumps tried: no verdict yet
    assert schedule.interval(8, [True] * 8) == 1
    assert schedule.interval(8, [False, True, True, False, True, True, True, True]) == 1  # 2/8
    assert schedule.interval(8, [False, True, False, True, False, True, True, True]) == 2  # 3/8
    assert schedule.interval(8, [False] * 5 + [True] * 7 + [False]) == 1  # only the newest 8
    assert schedule.jump_due(9, fresh=1, context=8, recent=[True] * 8)
    assert not schedule.jump_due(9, fresh=1, context=8, recent=[True] * 7 + [False] * 3)
    strict = CadenceSchedule(ScheduleConfig(jump_every=2, whole_jump_every=1, max_shortened=0))
    assert strict.interval(8, [False] + [True] * 7) == 2
    assert CadenceSchedule(ScheduleConfig(jump_every=2)).interval(8, [True] * 8) == 2
    with pytest.raises(ValueError, match="whole_jump_every"):
        JumpConfig(jump_every=8, whole_jump_every=2, context=8)


def test_shrinking_horizon_falls_linearly_to_the_minimum() -> None:
    schedule = CadenceSchedule(ScheduleConfig(horizon=9, horizon_schedule="shrinking",
                                              min_horizon=3, total_steps=60))
    assert [schedule.horizon(s, longest=1) for s in (0, 30, 60, 600)] == [9, 6, 3, 3]


def test_backtracking_halves_until_the_guard_accepts() -> None:
    line = Line(8.0)
    decision = Backtracking(AcceptanceConfig(max_backtracks=3)).decide(line, Farther(line, 2.5))
    assert line.tried == [1.0, 0.5, 0.25]
    assert decision == Decision(0.25, 2.0)


def test_backtracking_rejects_after_max_backtracks_and_says_why() -> None:
    line = Line(8.0)
    decision = Backtracking(AcceptanceConfig(max_backtracks=1)).decide(line, Farther(line, 0.1))
    assert line.tried == [1.0, 0.5] and decision.fraction == 0.0
    assert decision.reason == "distance 4 > limit 0.1 at every length"


def test_backtracking_without_a_guard_keeps_the_whole_move() -> None:
    line = Line(3.0)
    assert Backtracking().decide(line, None).fraction == 1.0


class Shift:
    """Predicts the last snapshot + 1."""

    name, context = "shift", 2

    def predict(self, window: torch.Tensor, steps: Any, specs: Any, horizon: int) -> torch.Tensor:
        return window[-1] + 1.0


class LongerFirst:
    """A custom rule: tries twice the move, keeps it if the guard allows, else rejects."""

    name = "longer"

    def __init__(self, config: AcceptanceConfig) -> None:
        self.config = config

    def decide(self, candidate: Any, guard: Any) -> Decision:
        candidate.write(2.0)
        value = guard.measure() if guard is not None else math.nan
        if guard is None or value <= guard.limit:
            return Decision(2.0, value)
        return Decision(0.0, value, "too far")


def test_a_registered_rule_is_chosen_by_name_and_drives_the_optimizer() -> None:
    class Plugin:
        @hookimpl
        def tipl_register_acceptance_rules(self, register: Any) -> None:
            register("longer", LongerFirst)

    pm = get_plugin_manager()
    plugin = Plugin()
    pm.register(plugin)
    try:
        assert isinstance(make_rule(AcceptanceConfig(rule="longer")), LongerFirst)
        param = nn.Parameter(torch.zeros(1))
        opt = TIPLOptimizer([param], Shift(), base=torch.optim.SGD([param], lr=1.0),
                            config={"snapshot_every": 1, "rule": "longer"})
        for _ in range(2):  # each gradient step moves the weight by -1
            opt.zero_grad()
            param.sum().backward()
            opt.step()
    finally:
        pm.unregister(plugin)
    report = opt.last_report
    assert report is not None and report.fraction == 2.0 and not report.shortened
    assert param.item() == 0.0  # -2 after two steps, then twice the predicted move of +1
    assert repr(opt).endswith("rule=longer)")
    with pytest.raises(ConfigError, match="Unknown acceptance rule 'nope'; registered: backtrack"):
        make_rule(AcceptanceConfig(rule="nope"))


def shift_optimizer(param: torch.Tensor, **config: Any) -> TIPLOptimizer:
    return TIPLOptimizer([param], Shift(), base=torch.optim.SGD([param], lr=0.0),
                         config={"snapshot_every": 1, **config})


def steps(opt: TIPLOptimizer, param: torch.Tensor, n: int) -> None:
    for _ in range(n):
        opt.zero_grad()
        (param * 0).sum().backward()
        opt.step()


def test_jump_hooks_are_per_instance_removable_and_never_break_training(
        caplog: pytest.LogCaptureFixture) -> None:
    param = nn.Parameter(torch.zeros(2))
    opt, other = shift_optimizer(param), shift_optimizer(nn.Parameter(torch.zeros(2)))
    seen: list[tuple[Any, int]] = []
    handle = opt.register_jump_hook(lambda o, r: seen.append((o, r.step)))

    def broken(o: Any, r: Any) -> None:
        raise RuntimeError("observer bug")

    opt.register_jump_hook(broken)
    steps(opt, param, 3)
    assert seen == [(opt, 2), (opt, 3)]
    assert param.tolist() == [2.0, 2.0]  # both jumps applied despite the broken hook
    assert sum("observer bug" in r.message for r in caplog.records) == 1  # logged once
    handle.remove()
    steps(opt, param, 1)
    assert len(seen) == 2 and other.counters["jumps_tried"] == 0


def test_plugins_hear_jumps_through_the_bridge() -> None:
    reports: list[JumpReport] = []

    class Recorder:
        @hookimpl
        def tipl_on_jump(self, report: JumpReport) -> None:
            reports.append(report)

    pm = get_plugin_manager()
    recorder = Recorder()
    pm.register(recorder)
    try:
        param = nn.Parameter(torch.zeros(1))
        steps(shift_optimizer(param), param, 2)
    finally:
        pm.unregister(recorder)
    assert [r.step for r in reports] == [2]


def test_one_tally_counts_reports() -> None:
    tally = JumpTally()
    for accepted, shortened in ((True, False), (True, True), (False, False)):
        tally.add(JumpReport(step=1, horizon=1, fraction=0.5 if shortened else float(accepted),
                             relative_size=0.1, guard=math.nan, accepted=accepted,
                             shortened=shortened, prediction_ms=0.1))
    assert tally == {"snapshots": 0, "jumps_tried": 3, "jumps_accepted": 2,
                     "jumps_shortened": 1, "jumps_rejected": 1, "jumps_undone": 0,
                     "jumps_held": 0}
    assert tally.merge({"jumps_tried": 2})["jumps_tried"] == 5


def test_config_sections_take_flat_fields_and_round_trip() -> None:
    flat = JumpConfig.model_validate({"mode": "manual", "snapshot_every": 1, "scale": 2,
                                      "context": 4, "schedule": "shrinking",
                                      "total_steps": 10})
    nested = JumpConfig(schedule={"mode": "manual", "snapshot_every": 1,  # type: ignore[arg-type]
                                  "horizon_schedule": "shrinking", "total_steps": 10},
                        acceptance={"scale": 2}, prediction={"context": 4})  # type: ignore[arg-type]
    assert flat == nested
    assert flat.schedule.mode == "manual" and flat.acceptance.scale == 2.0
    assert JumpConfig.model_validate(flat.model_dump(mode="json")) == flat
    assert flat.explicit() == {"mode": "manual", "snapshot_every": 1, "horizon_schedule":
                               "shrinking", "total_steps": 10, "context": 4, "scale": 2.0}
    assert flat.flat()["max_backtracks"] == 3
    with pytest.raises(ValueError, match="horizn"):
        JumpConfig.model_validate({"horizn": 3})


def test_a_state_that_does_not_fit_changes_nothing() -> None:
    param = nn.Parameter(torch.zeros(3))
    opt = shift_optimizer(param, max_backtracks=1)
    steps(opt, param, 3)
    before = opt.state_dict()
    other = shift_optimizer(nn.Parameter(torch.zeros(3)), context=3)  # a longer window
    wrong = other.state_dict()
    with pytest.raises(ValueError, match="does not fit"):
        opt.load_state_dict(wrong)
    after = opt.state_dict()
    assert after["tipl"]["steps"] == before["tipl"]["steps"] == 3
    assert torch.equal(after["tipl"]["history"]["window"], before["tipl"]["history"]["window"])
    assert after["tipl"]["config"] == before["tipl"]["config"]
    broken = opt.state_dict()
    broken["tipl"]["config"] = {"snapshot_every": 0}
    with pytest.raises(ValueError, match="does not fit"):
        opt.load_state_dict(broken)
    assert opt.config.schedule.snapshot_every == 1


class Away:
    """A guard that rejects every move."""

    name, limit = "away", 0.0

    def reference(self) -> None:
        pass

    def measure(self) -> float:
        return 1.0


def test_a_rejected_jump_restores_float64_weights_bit_for_bit() -> None:
    param = nn.Parameter(torch.tensor([0.1, 1 / 3, 1e-9 + 1.0], dtype=torch.float64))
    exact = param.detach().clone()
    opt = TIPLOptimizer([param], Shift(), base=torch.optim.SGD([param], lr=0.0),
                        config={"snapshot_every": 1}, guard=Away())
    steps(opt, param, 2)
    assert opt.counters["jumps_rejected"] == 1
    assert torch.equal(param.detach(), exact)  # float32 would round 1/3 and 1 + 1e-9


class Bowl(Farther):
    """Distance guard whose score is highest at ``x = best``."""

    def __init__(self, line: Line, limit: float, best: float) -> None:
        super().__init__(line, limit)
        self.best = best

    def score(self) -> float:
        return -abs(self.line.x - self.best)


def test_search_keeps_the_best_scoring_length_within_the_limit() -> None:
    from tipl_opt.acceptance import StepSearch

    rule = StepSearch(AcceptanceConfig(fractions=(0.5, 1.0, 2.0, 4.0)))
    line = Line(1.0)
    assert rule.decide(line, Bowl(line, limit=10.0, best=2.2)) == Decision(2.0, 2.0)
    line = Line(1.0)
    assert rule.decide(line, Bowl(line, limit=1.5, best=3.0)).fraction == 1.0  # 2 and 4 too far
    line = Line(1.0)
    assert rule.decide(line, Farther(line, limit=3.0)).fraction == 2.0  # unscored: longest
    line = Line(8.0)
    assert rule.decide(line, Farther(line, limit=1.0)).fraction == 0.125  # halves below 0.5
    assert line.tried == [0.5, 1.0, 2.0, 4.0, 0.25, 0.125]
    line = Line(8.0)
    decision = StepSearch(AcceptanceConfig(max_backtracks=0)).decide(line, Farther(line, 0.1))
    assert decision.fraction == 0.0 and "limit 0.1" in decision.reason


def test_search_with_a_loss_guard_takes_the_lowest_loss() -> None:
    from tipl_opt.guard import LossGuard

    param = nn.Parameter(torch.zeros(1))
    guard = LossGuard(lambda: (param - 3.0) ** 2, limit=0.0)  # optimum at 3; shift predicts +1
    opt = TIPLOptimizer([param], Shift(), base=torch.optim.SGD([param], lr=0.0), guard=guard,
                        config={"snapshot_every": 1, "rule": "search",
                                "fractions": (0.5, 1, 2, 4)})
    steps(opt, param, 2)
    assert opt.last_report is not None and opt.last_report.fraction == 4.0
    assert param.item() == 4.0  # 2 and 4 are both 1 from the optimum: the longer wins


def test_keep_window_moves_the_window_and_jumps_every_n_snapshots() -> None:
    param = nn.Parameter(torch.zeros(1))
    opt = TIPLOptimizer([param], Shift(), base=torch.optim.SGD([param], lr=1.0),
                        config={"snapshot_every": 1, "keep_window": True, "jump_every": 1,
                                "context": 3})
    jumps = []
    opt.register_jump_hook(lambda o, r: jumps.append(r.step))
    for _ in range(5):  # each gradient step: -1
        opt.zero_grad()
        param.sum().backward()
        opt.step()
    assert jumps == [3, 4, 5]  # the first needs a full window, then one new snapshot each
    window, _ = opt.history.window()
    assert window[-1].item() == param.item()  # the window was moved along with the jumps
    with pytest.raises(ValueError, match="keep_window"):
        JumpConfig(jump_every=2, context=8)


@pytest.mark.parametrize(("limit", "expected"), [(None, [3, 5, 7, 9, 11, 13, 15, 17, 18, 19]),
                                                 (0.5, [3, 5, 7, 9, 11, 13, 15, 17, 19, 21])])
def test_jumps_come_sooner_while_they_go_through_whole(limit: float | None,
                                                     expected: list[int]) -> None:
    param = nn.Parameter(torch.zeros(1))
    guard = None if limit is None else Moved("all", [param], limit)  # +1 shortened to 1/2
    opt = TIPLOptimizer([param], Shift(), base=torch.optim.SGD([param], lr=0.0), guard=guard,
                        config={"snapshot_every": 1, "keep_window": True, "jump_every": 2,
                                "whole_jump_every": 1, "context": 3})
    jumps: list[int] = []
    opt.register_jump_hook(lambda o, r: jumps.append(r.step))
    steps(opt, param, 21)
    assert jumps[:10] == expected
    assert opt.counters.get("jumps_sooner", 0) == (0 if limit else len(jumps) - 8)
    if limit is None:  # the newest outcomes round-trip with the state
        state = opt.state_dict()
        fresh = TIPLOptimizer([nn.Parameter(param.detach().clone())], Shift(),
                              base=torch.optim.SGD([param], lr=0.0),
                              config=dict(opt.config.flat()))
        fresh.load_state_dict(state)
        assert list(fresh._recent) == [True] * 8


class Moved:
    """Largest move of some of ``params`` since the reference (a guard watching one network)."""

    def __init__(self, name: str, params: list[torch.Tensor], limit: float) -> None:
        self.name, self.params, self.limit = name, params, limit
        self.ref: list[torch.Tensor] = []

    def reference(self) -> None:
        self.ref = [p.detach().clone() for p in self.params]

    def measure(self) -> float:
        return max(float((p.detach() - r).abs().max()) for p, r in zip(self.params, self.ref,
                                                                    strict=True))


class Eight:
    """Predicts the last snapshot + 8."""

    name, context = "eight", 2

    def predict(self, window: torch.Tensor, steps: Any, specs: Any, horizon: int) -> torch.Tensor:
        return window[-1] + 8.0


def _actor_critic(rule: str, guard_of: Any) -> tuple[nn.Parameter, nn.Parameter, TIPLOptimizer]:
    from tipl_opt.paths import ParamSpec

    actor, critic = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    specs = [ParamSpec("pi.weight", (1,), "actor"), ParamSpec("vf.weight", (1,), "critic")]
    opt = TIPLOptimizer([actor, critic], Eight(), base=torch.optim.SGD([actor, critic], lr=0.0),
                        specs=specs, guard=guard_of(actor, critic),
                        config={"snapshot_every": 1, "rule": rule})
    steps(opt, actor, 2)
    return actor, critic, opt


def test_split_shortens_only_the_network_whose_trust_region_refuses_the_move() -> None:
    from tipl_opt.guard import AllOfGuard

    def guard(actor: torch.Tensor, critic: torch.Tensor) -> AllOfGuard:
        return AllOfGuard(Moved("kl", [actor], 10.0), Moved("value_change", [critic], 2.5),
                          scopes=("actor", "critic"))

    actor, critic, opt = _actor_critic("split", guard)
    report = opt.last_report
    assert report is not None and report.accepted and report.shortened
    assert (actor.item(), critic.item()) == (8.0, 2.0)  # the policy moves the whole way
    assert report.fraction == 1.0 and report.fractions == {"actor": 1.0, "critic": 0.25}
    assert report.limited_by == ("value_change",)
    assert report.relative_size == pytest.approx(math.hypot(8.0, 2.0))  # theta = 0: norm 1
    assert opt.undo_jump() and (actor.item(), critic.item()) == (0.0, 0.0)
    actor, critic, opt = _actor_critic("backtrack", guard)  # the whole move: both cut back
    assert (actor.item(), critic.item()) == (2.0, 2.0)
    assert opt.last_report is not None and opt.last_report.fractions == {}


def test_split_falls_back_to_the_whole_move_when_the_networks_are_not_separate() -> None:
    from tipl_opt.guard import AllOfGuard

    def tangled(actor: torch.Tensor, critic: torch.Tensor) -> AllOfGuard:
        # the "actor" part also sees the critic's move: per-network fractions cannot fit it
        return AllOfGuard(Moved("kl", [actor, critic], 2.5), Moved("value_change", [critic], 10),
                          scopes=("actor", "critic"))

    actor, critic, opt = _actor_critic("split", tangled)
    assert (actor.item(), critic.item()) == (2.0, 2.0)
    assert opt.last_report is not None and opt.last_report.fractions == {}

    def unscoped(actor: torch.Tensor, critic: torch.Tensor) -> AllOfGuard:
        return AllOfGuard(Moved("kl", [actor], 10.0), Moved("value_change", [critic], 2.5))

    actor, critic, opt = _actor_critic("split", unscoped)
    assert (actor.item(), critic.item()) == (2.0, 2.0)  # no scopes: plain backtracking


def test_split_keeps_the_moved_window_and_rejects_exactly_when_nothing_fits() -> None:
    from tipl_opt.guard import AllOfGuard

    actor, critic, opt = _actor_critic("split", lambda a, c: AllOfGuard(
        Moved("kl", [a], 0.1), Moved("value_change", [c], 0.1), scopes=("actor", "critic")))
    assert (actor.item(), critic.item()) == (0.0, 0.0)
    report = opt.last_report
    assert report is not None and not report.accepted and "at every length" in report.reason
    from tipl_opt.paths import ParamSpec

    param_a, param_c = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    kept = TIPLOptimizer([param_a, param_c], Eight(),
                         base=torch.optim.SGD([param_a, param_c], lr=0.0),
                         specs=[ParamSpec("a", (1,), "actor"), ParamSpec("c", (1,), "critic")],
                         guard=AllOfGuard(Moved("kl", [param_a], 10.0),
                                          Moved("value_change", [param_c], 4.5),
                                          scopes=("actor", "critic")),
                         config={"snapshot_every": 1, "rule": "split", "keep_window": True,
                                 "jump_every": 1})
    steps(kept, param_a, 2)
    window, _ = kept.history.window()
    assert window[-1].tolist() == [8.0, 4.0]  # the window moved by what each network moved
