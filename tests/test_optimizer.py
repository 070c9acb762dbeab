"""TIPLOptimizer: cadence traced by hand, guards, NaN safety, state round trip, torch interop."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import pytest
import torch
from torch import nn

from tipl_opt.errors import ConfigError, TiplError
from tipl_opt.guard import (
    ActionDistanceGuard,
    GreedyActionGuard,
    JumpGuard,
    KLGuard,
    LossGuard,
    QChangeGuard,
)
from tipl_opt.history import WeightHistory
from tipl_opt.hookspecs import hookimpl
from tipl_opt.jumps import JumpConfig
from tipl_opt.optimizer import TIPLOptimizer
from tipl_opt.paths import ParamSpec
from tipl_opt.plugins import get_plugin_manager
from tipl_opt.predictors import LinearPredictor


class ShiftPredictor:
    """Predicts "last snapshot + shift" and records the windows it saw."""

    name = "shift"

    def __init__(self, context: int, shift: float = 1.0) -> None:
        self.context, self.shift = context, shift
        self.calls: list[tuple[list[float], int]] = []

    def predict(self, window: torch.Tensor, steps: torch.Tensor | None,
                specs: Sequence[ParamSpec], horizon: int) -> torch.Tensor:
        assert steps is not None
        self.calls.append((steps.tolist(), horizon))
        return window[-1] + self.shift


def sgd_zero_lr(param: torch.Tensor) -> torch.optim.Optimizer:
    return torch.optim.SGD([param], lr=0.0)


def run_steps(opt: TIPLOptimizer, param: torch.Tensor, n: int) -> None:
    for _ in range(n):
        opt.zero_grad()
        (param * 0).sum().backward()
        opt.step()


def test_snapshot_and_jump_cadence_traced_by_hand() -> None:
    param = nn.Parameter(torch.zeros(3))
    predictor = ShiftPredictor(context=3)
    opt = TIPLOptimizer([param], predictor, base=sgd_zero_lr(param),
                        config={"snapshot_every": 2})
    # snapshots at steps 1, 3, 5 -> full -> jump at 5 (+1); restart: 5, 7, 9 -> jump at 9 (+1)
    run_steps(opt, param, 4)
    assert predictor.calls == [] and opt.counters["snapshots"] == 2
    run_steps(opt, param, 1)
    assert predictor.calls == [([1.0, 3.0, 5.0], 1)]
    assert param.tolist() == [1.0, 1.0, 1.0]
    run_steps(opt, param, 4)
    assert predictor.calls[1] == ([5.0, 7.0, 9.0], 1)
    assert param.tolist() == [2.0, 2.0, 2.0]
    assert opt.counters == {"snapshots": 7, "jumps_tried": 2, "jumps_accepted": 2,
                            "jumps_shortened": 0, "jumps_rejected": 0, "jumps_undone": 0,
                            "jumps_held": 0}
    assert opt.last_report is not None and opt.last_report.step == 9
    assert opt.last_report.relative_size == pytest.approx(math.sqrt(3) / math.sqrt(3))


def test_warmup_delays_the_first_jump() -> None:
    param = nn.Parameter(torch.zeros(2))
    predictor = ShiftPredictor(context=2)
    opt = TIPLOptimizer([param], predictor, base=sgd_zero_lr(param),
                        config={"snapshot_every": 1, "warmup_steps": 5})
    run_steps(opt, param, 4)
    assert predictor.calls == []
    run_steps(opt, param, 1)
    assert [c[0] for c in predictor.calls] == [[4.0, 5.0]]


def test_manual_mode_jumps_only_at_safe_points() -> None:
    param = nn.Parameter(torch.zeros(2))
    predictor = ShiftPredictor(context=2)
    opt = TIPLOptimizer([param], predictor, base=sgd_zero_lr(param),
                        config={"mode": "manual", "snapshot_every": 1})
    assert opt.maybe_jump() is None  # first snapshot, at step 0
    run_steps(opt, param, 10)
    assert predictor.calls == []  # step() never jumps in manual mode
    report = opt.maybe_jump()
    assert report is not None and report.accepted and predictor.calls[0][0] == [0.0, 10.0]
    auto = TIPLOptimizer([param], predictor, base=sgd_zero_lr(param))
    with pytest.raises(TiplError, match="mode='manual'"):
        auto.maybe_jump()


def test_non_finite_prediction_keeps_the_exact_weights() -> None:
    param = nn.Parameter(torch.randn(5))
    opt = TIPLOptimizer([param], ShiftPredictor(2, shift=float("nan")), base=sgd_zero_lr(param),
                        config={"snapshot_every": 1})
    run_steps(opt, param, 1)
    before = param.detach().clone()
    run_steps(opt, param, 1)
    assert torch.equal(param.detach(), before)
    assert opt.counters["jumps_rejected"] == 1
    assert opt.last_report is not None and opt.last_report.reason == "non-finite prediction"


class DistanceGuard:
    """Measures how far the parameter moved from its reference."""

    name = "distance"

    def __init__(self, param: torch.Tensor, limit: float) -> None:
        self.param, self.limit = param, limit
        self.ref = torch.zeros(0)

    def reference(self) -> None:
        self.ref = self.param.detach().clone()

    def measure(self) -> float:
        return float((self.param.detach() - self.ref).abs().max())


def test_guard_backtracks_the_jump_length() -> None:
    param = nn.Parameter(torch.zeros(1))
    opt = TIPLOptimizer([param], ShiftPredictor(2, shift=8.0), base=sgd_zero_lr(param),
                        config={"snapshot_every": 1}, guard=DistanceGuard(param, limit=2.5))
    run_steps(opt, param, 2)
    report = opt.last_report
    assert report is not None and report.accepted and report.shortened
    assert report.fraction == 0.25 and param.item() == 2.0  # 8 -> 4 -> 2 fits
    assert opt.counters["jumps_shortened"] == 1


def test_scale_multiplies_the_predicted_move_before_the_guard() -> None:
    param = nn.Parameter(torch.zeros(1))
    opt = TIPLOptimizer([param], ShiftPredictor(2, shift=1.5), base=sgd_zero_lr(param),
                        config={"snapshot_every": 1, "scale": 3.0})
    run_steps(opt, param, 2)
    assert param.item() == 4.5
    guarded = nn.Parameter(torch.zeros(1))
    opt = TIPLOptimizer([guarded], ShiftPredictor(2, shift=1.5), base=sgd_zero_lr(guarded),
                        config={"snapshot_every": 1, "scale": 4.0},
                        guard=DistanceGuard(guarded, limit=2.0))
    run_steps(opt, guarded, 2)
    report = opt.last_report
    assert report is not None and report.fraction == 0.25 and guarded.item() == 1.5  # 6 -> 3 -> 1.5
    with pytest.raises(ValueError):
        JumpConfig(scale=0)


def test_guard_that_never_fits_skips_the_jump_exactly() -> None:
    param = nn.Parameter(torch.full((3,), 0.1))
    opt = TIPLOptimizer([param], ShiftPredictor(2, shift=8.0), base=sgd_zero_lr(param),
                        config={"snapshot_every": 1, "max_backtracks": 2},
                        guard=DistanceGuard(param, limit=0.5))
    run_steps(opt, param, 2)
    assert torch.equal(param.detach(), torch.full((3,), 0.1))
    report = opt.last_report
    assert report is not None and not report.accepted and report.fraction == 0.0
    assert "distance 2 > limit 0.5" in report.reason
    assert report.limited_by == ("distance",)


def test_a_report_names_the_trust_region_that_shortened_the_jump() -> None:
    from tipl_opt.guard import AllOfGuard

    param = nn.Parameter(torch.zeros(2))
    first = DistanceGuard(param, limit=10.0)  # never binds
    second = DistanceGuard(param, limit=2.5)
    second.name = "tight"
    opt = TIPLOptimizer([param], ShiftPredictor(2, shift=8.0), base=sgd_zero_lr(param),
                        config={"snapshot_every": 1}, guard=AllOfGuard(first, second))
    run_steps(opt, param, 2)
    report = opt.last_report
    assert report is not None and report.fraction == 0.25
    assert report.limited_by == ("tight",)  # 8 and 4 exceeded the second guard's 2.5 only
    assert opt.counters["limited_by_tight"] == 1 and "limited_by_distance" not in opt.counters
    fits = TIPLOptimizer([param], ShiftPredictor(2, shift=1.0), base=sgd_zero_lr(param),
                         config={"snapshot_every": 1}, guard=DistanceGuard(param, limit=2.5))
    run_steps(fits, param, 2)
    assert fits.last_report is not None and fits.last_report.limited_by == ()
    merged = opt.counters.merge(fits.counters)
    assert merged["limited_by_tight"] == 1 and merged["jumps_tried"] == 2
    state = opt.state_dict()
    opt.load_state_dict(state)
    assert opt.counters["limited_by_tight"] == 1  # round-trips with the other counters


def test_kl_and_action_guards_measure_behaviour_change() -> None:
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    obs = torch.randn(64, 3)
    kl = KLGuard(lambda o: torch.distributions.Categorical(logits=net(o)), obs)
    act = ActionDistanceGuard(lambda o: torch.tanh(net(o)), obs)
    for guard in (kl, act):
        guard.reference()
        assert guard.measure() == 0.0
    with torch.no_grad():
        net.weight[0].add_(1.0)  # changes the logits' difference, not just their level
    assert kl.measure() > 0.01 and act.measure() > 0.1


def greedy_q() -> nn.Linear:
    """Q [N, 3] = (x, y, 0) for observations (x, y)."""
    q = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        q.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    return q


GREEDY_OBS = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [-1.0, -1.0]])  # greedy 0, 1, 0, 2


def test_greedy_action_guard_counts_changed_argmaxes() -> None:
    q = greedy_q()
    guard = GreedyActionGuard(q, GREEDY_OBS, limit=0.1)
    assert isinstance(guard, JumpGuard) and guard.name == "greedy_change"
    guard.reference()
    assert guard.measure() == 0.0
    with torch.no_grad():
        q.weight[1, 1] = 3.0  # obs 2 now prefers action 1 (3 > 2); the others keep theirs
    assert guard.measure() == pytest.approx(0.25)


def test_greedy_action_guard_reads_a_fresh_batch_at_every_reference() -> None:
    q = greedy_q()
    batches = [GREEDY_OBS[:2], GREEDY_OBS[2:]]
    reads: list[torch.Tensor] = []

    def newest() -> torch.Tensor:
        reads.append(batches[len(reads)])
        return reads[-1]

    guard = GreedyActionGuard(q, newest, limit=0.1)
    guard.reference()  # first jump: obs 0 and 1
    with torch.no_grad():
        q.weight[1, 1] = 3.0
    assert guard.measure() == 0.0 and guard.measure() == 0.0  # measures reuse the batch
    assert len(reads) == 1
    with torch.no_grad():
        q.weight[1, 1] = 1.0
    guard.reference()  # next jump: obs 2 and 3
    with torch.no_grad():
        q.weight[1, 1] = 3.0
    assert len(reads) == 2 and guard.measure() == pytest.approx(0.5)


def test_q_change_guard_is_relative() -> None:
    obs, act = torch.ones(4, 2), torch.ones(4, 1)
    scale = [1.0]
    guard = QChangeGuard(lambda o, a: scale[0] * (o.sum(1) + a.sum(1)), (obs, act), limit=0.1)
    assert isinstance(guard, JumpGuard) and guard.name == "q_change"
    guard.reference()
    assert guard.measure() == 0.0
    scale[0] = 1.05
    assert guard.measure() == pytest.approx(0.05)


def test_q_change_guard_takes_a_tuple_of_critics_and_a_callable_batch() -> None:
    """SB3's ContinuousCritic returns one [N, 1] tensor per Q-network."""
    obs, act = torch.ones(4, 2), torch.full((4, 1), 2.0)
    scales = [1.0, 1.0]
    reads: list[int] = []

    def critic(o: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, ...]:
        q = o.sum(1, keepdim=True) + a  # [N, 1] = 4
        return scales[0] * q, scales[1] * q

    def newest() -> tuple[torch.Tensor, torch.Tensor]:
        reads.append(1)
        return obs, act

    guard = QChangeGuard(critic, newest, limit=0.1)
    guard.reference()
    scales[1] = 1.2  # one critic of two moves by 20%: 10% of the mean |Q|
    assert guard.measure() == pytest.approx(0.1) and len(reads) == 1


def test_q_change_guard_floors_the_scale_of_zero_q_values() -> None:
    level = [0.0]
    guard = QChangeGuard(lambda o, a: torch.full((len(o), 1), level[0]),
                         (torch.ones(3, 2), torch.ones(3, 1)))
    guard.reference()
    level[0] = 1e-8
    assert guard.measure() == pytest.approx(1e-8 / 1e-6)


def _guards_on(observations: Any) -> list[JumpGuard]:
    net = nn.Linear(2, 3)

    def pair() -> tuple[torch.Tensor, torch.Tensor]:
        obs = observations() if callable(observations) else observations
        return obs, torch.zeros(len(obs), 1)

    return [KLGuard(lambda o: torch.distributions.Categorical(logits=net(o)), observations),
            ActionDistanceGuard(lambda o: torch.tanh(net(o)), observations),
            GreedyActionGuard(net, observations),
            QChangeGuard(lambda o, a: net(o)[:, :1] + a, pair if callable(observations)
                         else pair())]


@pytest.mark.parametrize("empty", [torch.empty(0), torch.empty(0, 2)])
@pytest.mark.parametrize("form", ["tensor", "callable"])
def test_an_empty_batch_measures_inf(empty: torch.Tensor, form: str) -> None:
    for guard in _guards_on(empty if form == "tensor" else lambda: empty):
        guard.reference()  # the model is never called on the empty batch
        assert guard.measure() == math.inf, guard.name


def test_guards_measure_only_after_a_reference() -> None:
    for guard in _guards_on(torch.ones(2, 2)):
        with pytest.raises(RuntimeError, match="reference"):
            guard.measure()


def test_a_guard_with_no_observations_yet_rejects_the_jump_exactly() -> None:
    net = nn.Linear(2, 3)
    before = [p.detach().clone() for p in net.parameters()]
    opt = TIPLOptimizer(net, ShiftPredictor(2), base=torch.optim.SGD(net.parameters(), lr=0.0),
                        config={"snapshot_every": 1},
                        guard=GreedyActionGuard(net, lambda: torch.empty(0, 2)))
    for _ in range(2):
        opt.zero_grad()
        net(torch.ones(1, 2)).sum().backward()
        opt.step()
    report = opt.last_report
    assert report is not None and not report.accepted and report.guard == math.inf
    assert "greedy_change inf > limit 0.1" in report.reason
    assert all(torch.equal(p, b) for p, b in zip(net.parameters(), before, strict=True))


def test_lr_scheduler_and_direct_lr_writes_reach_the_base() -> None:
    net = nn.Linear(2, 1)
    opt = TIPLOptimizer(net, "linear", lr=0.1)
    assert isinstance(opt, torch.optim.Optimizer)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    net(torch.ones(1, 2)).sum().backward()
    opt.step()
    sched.step()
    assert opt.base.param_groups[0]["lr"] == pytest.approx(0.05)
    opt.param_groups[0]["lr"] = 0.01
    assert opt.base.param_groups[0]["lr"] == 0.01
    assert opt.state is opt.base.state


def test_step_hooks_fire() -> None:
    net = nn.Linear(2, 1)
    opt = TIPLOptimizer(net, "linear")
    seen: list[str] = []
    opt.register_step_pre_hook(lambda *a: seen.append("pre"))
    opt.register_step_post_hook(lambda *a: seen.append("post"))
    net(torch.ones(1, 2)).sum().backward()
    opt.step()
    assert seen == ["pre", "post"]


def train(net: nn.Module, opt: torch.optim.Optimizer, steps: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(32, 4, generator=g)
        loss = ((net(x) - x.sum(dim=1, keepdim=True)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def make(seed: int = 0) -> tuple[nn.Module, TIPLOptimizer]:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    return net, TIPLOptimizer(net, "linear", config={"snapshot_every": 3}, lr=1e-2)


def test_resume_from_state_dict_is_bit_identical() -> None:
    net_a, opt_a = make()
    train(net_a, opt_a, 20, seed=1)
    saved_net = {k: v.clone() for k, v in net_a.state_dict().items()}
    saved_opt = copy.deepcopy(opt_a.state_dict())  # as torch.save would freeze it
    train(net_a, opt_a, 40, seed=2)

    net_b, opt_b = make(seed=123)  # different init: everything must come from the state
    net_b.load_state_dict(saved_net)
    opt_b.load_state_dict(saved_opt)
    assert opt_b.base.state is opt_b.state and opt_b.base.param_groups is opt_b.param_groups
    train(net_b, opt_b, 40, seed=2)
    for a, b in zip(net_a.parameters(), net_b.parameters(), strict=True):
        assert torch.equal(a, b)
    assert opt_a.counters == opt_b.counters and opt_a.counters["jumps_accepted"] >= 2
    assert opt_a.steps == opt_b.steps == 60


def test_reset_moments_clears_the_base_state() -> None:
    param = nn.Parameter(torch.zeros(2))
    opt = TIPLOptimizer([param], ShiftPredictor(2), config={"snapshot_every": 1,
                                                            "reset_moments": True})
    param.grad = torch.ones(2)
    opt.step()
    assert len(opt.base.state) == 1
    param.grad = torch.ones(2)
    opt.step()  # jumps
    assert len(opt.base.state) == 0


def test_jump_reports_reach_the_hook() -> None:
    reports: list[Any] = []

    class Recorder:
        @hookimpl
        def tipl_on_jump(self, report: Any) -> None:
            reports.append(report)

    pm = get_plugin_manager()
    recorder = Recorder()
    pm.register(recorder)
    try:
        param = nn.Parameter(torch.zeros(2))
        opt = TIPLOptimizer([param], ShiftPredictor(2), base=sgd_zero_lr(param),
                            config={"snapshot_every": 1})
        run_steps(opt, param, 4)
    finally:
        pm.unregister(recorder)
    assert [r.step for r in reports] == [2, 3, 4]


def test_shrinking_horizon_schedule() -> None:
    param = nn.Parameter(torch.zeros(2))
    opt = TIPLOptimizer([param], ShiftPredictor(2), base=sgd_zero_lr(param),
                        config={"horizon": 8, "schedule": "shrinking", "total_steps": 100})
    assert opt.current_horizon() == 8
    opt.steps = 50
    assert opt.current_horizon() == 4
    opt.steps = 1000
    assert opt.current_horizon() == 1


def test_bad_configuration_is_refused_eagerly() -> None:
    with pytest.raises(ValueError, match="needs total_steps"):
        JumpConfig(schedule="shrinking")
    with pytest.raises(ValueError, match="snapshot_every"):
        JumpConfig(snapshot_every=0)
    net = nn.Linear(2, 2)
    with pytest.raises(ConfigError, match="not both"):
        TIPLOptimizer(net, "linear", base=torch.optim.SGD(net.parameters(), lr=1), lr=0.1)
    with pytest.raises(ConfigError, match="shorter than the predictor"):
        TIPLOptimizer(net, LinearPredictor(8), config={"context": 3})


def test_history_is_bounded_and_round_trips() -> None:
    history = WeightHistory(3, 2)
    for i in range(5):
        history.push(torch.full((2,), float(i)), i * 10)
    window, steps = history.window()
    assert window[:, 0].tolist() == [2.0, 3.0, 4.0] and steps.tolist() == [20.0, 30.0, 40.0]
    assert history.buffer.shape == (3, 2)
    other = WeightHistory(3, 2)
    other.load_state_dict(history.state_dict())
    assert torch.equal(other.window()[0], window) and other.count == 5


def test_loss_guard_for_a_plain_supervised_loop() -> None:
    torch.manual_seed(0)
    net = nn.Linear(3, 1)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])

    def closure() -> torch.Tensor:
        return ((net(x) - y) ** 2).mean()

    opt = TIPLOptimizer(net, ShiftPredictor(2, shift=5.0), guard=LossGuard(closure, 0.05),
                        config={"snapshot_every": 1}, lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        closure().backward()
        opt.step()
    assert opt.counters["jumps_rejected"] == 2  # +5 on every weight only makes the loss worse


def test_linear_by_name_fits_the_configured_window() -> None:
    param = nn.Parameter(torch.zeros(2))
    opt = TIPLOptimizer([param], "linear", lr=1e-3, config={"context": 4})
    assert opt.predictor.context == 4 and opt.history.capacity == 4
    opt = TIPLOptimizer([param], "linear", lr=1e-3, config={"context": 12})
    assert opt.predictor.context == 12


def test_a_non_finite_window_skips_the_jump_without_calling_the_predictor() -> None:
    class MustNotPredict(ShiftPredictor):
        def predict(self, window, steps, specs, horizon):  # type: ignore[no-untyped-def]
            raise AssertionError("predict() called on a non-finite window")

    param = nn.Parameter(torch.zeros(3))
    opt = TIPLOptimizer([param], MustNotPredict(2), base=sgd_zero_lr(param),
                        config={"snapshot_every": 1})
    with torch.no_grad():
        param[1] = float("nan")  # training diverged
    run_steps(opt, param, 2)
    assert opt.counters["jumps_rejected"] == 1
    assert opt.last_report is not None and opt.last_report.reason == "non-finite window"
    assert torch.isnan(param[1]) and param[0] == 0  # nothing was written


def test_a_base_state_that_does_not_fit_changes_nothing() -> None:
    param = nn.Parameter(torch.zeros(3))
    opt = TIPLOptimizer([param], ShiftPredictor(2), base=torch.optim.Adam([param], lr=0.1),
                        config={"snapshot_every": 1})
    run_steps(opt, param, 3)
    before = copy.deepcopy(opt.state_dict())
    a, b = nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(2))
    other = TIPLOptimizer([a, b], ShiftPredictor(2), base=torch.optim.Adam([a, b], lr=0.5),
                          config={"snapshot_every": 1})
    wrong = other.state_dict()
    wrong["tipl"] = copy.deepcopy(before["tipl"])  # the TIPL part fits, the base does not
    wrong["tipl"]["steps"] = 99
    with pytest.raises(ValueError):
        opt.load_state_dict(wrong)
    after = opt.state_dict()
    assert after["tipl"]["steps"] == 3 and opt.steps == 3
    assert after["param_groups"] == before["param_groups"]
    assert opt.base.param_groups[0]["lr"] == 0.1
    assert torch.equal(after["state"][0]["exp_avg"], before["state"][0]["exp_avg"])


def test_roles_move_only_the_chosen_parameters() -> None:
    torch.manual_seed(0)
    net = nn.ModuleDict({"pi": nn.Linear(3, 2), "vf": nn.Linear(3, 1)})  # vf -> critic
    base = torch.optim.SGD(net.parameters(), lr=0.0)
    opt = TIPLOptimizer(net, ShiftPredictor(2), base=base,
                        config={"snapshot_every": 1, "roles": ["critic"]})
    assert [s.role for s in opt.specs] == ["actor", "actor", "critic", "critic"]
    actor = [p.detach().clone() for p in net["pi"].parameters()]
    critic = [p.detach().clone() for p in net["vf"].parameters()]
    for _ in range(2):  # the second step jumps
        opt.zero_grad()
        sum(p.sum() for p in net.parameters()).backward()
        opt.step()
    assert opt.counters["jumps_accepted"] == 1
    assert all(torch.equal(p, a) for p, a in zip(net["pi"].parameters(), actor, strict=True))
    assert all(torch.allclose(p, c + 1) for p, c in zip(net["vf"].parameters(), critic,
                                                        strict=True))
    assert opt.last_report is not None
    assert opt.last_report.relative_size == pytest.approx(
        math.sqrt(4) / float(torch.cat([p.reshape(-1) for p in actor + critic]).norm()))


def test_roles_round_trip_through_the_state() -> None:
    torch.manual_seed(0)
    net = nn.ModuleDict({"pi": nn.Linear(3, 2), "vf": nn.Linear(3, 1)})
    saved = TIPLOptimizer(net, ShiftPredictor(2), base=torch.optim.SGD(net.parameters(), lr=0.0),
                          config={"snapshot_every": 1, "roles": ["critic"]}).state_dict()
    opt = TIPLOptimizer(net, ShiftPredictor(2), base=torch.optim.SGD(net.parameters(), lr=0.0),
                        config={"snapshot_every": 1})
    opt.load_state_dict(saved)
    assert opt.config.acceptance.roles == ("critic",)
    actor = [p.detach().clone() for p in net["pi"].parameters()]
    for _ in range(2):
        opt.zero_grad()
        sum(p.sum() for p in net.parameters()).backward()
        opt.step()
    assert opt.counters["jumps_accepted"] == 1
    assert all(torch.equal(p, a) for p, a in zip(net["pi"].parameters(), actor, strict=True))
    only_pi = nn.ModuleDict({"pi": nn.Linear(3, 2)})
    other = TIPLOptimizer(only_pi, ShiftPredictor(2),
                          base=torch.optim.SGD(only_pi.parameters(), lr=0.0))
    with pytest.raises(ValueError, match="match no parameter"):
        other.load_state_dict({**saved, "state": {}, "param_groups": other.state_dict()[
            "param_groups"], "tipl": {**saved["tipl"], "history": other.state_dict()["tipl"][
                "history"]}})


def test_roles_that_match_no_parameter_are_refused() -> None:
    net = nn.ModuleDict({"pi": nn.Linear(3, 2)})
    with pytest.raises(ConfigError, match=r"jump roles \['critic'\] match no parameter.*"
                                          r"\['actor'\]"):
        TIPLOptimizer(net, "linear", config={"roles": ["critic"]})
