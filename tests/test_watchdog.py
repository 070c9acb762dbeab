"""The return watchdog and the optimizer's undo: a jump the next episodes reject is taken back,
and jumps wait while returns fall."""

from __future__ import annotations

import torch

from tipl_opt.adapters.attachment import Attachment, solved_level
from tipl_opt.adapters.base import TIPLSetup
from tipl_opt.adapters.watchdog import ReturnWatchdog, clearly_below
from tipl_opt.jumps import WatchConfig
from tipl_opt.optimizer import TIPLOptimizer


def _optimizer(context: int = 3) -> tuple[torch.nn.Parameter, TIPLOptimizer]:
    """One weight that SGD moves by +1 per step (the gradient is -1), and a linear predictor
    that extrapolates it: a jump from a window [.., k] predicts k + horizon."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = TIPLOptimizer([param], "linear", base_class=torch.optim.SGD, lr=1.0,
                        config={"mode": "manual", "snapshot_every": 1, "context": context,
                                "horizon": 4})
    opt.maybe_jump()  # the first snapshot, at 0
    return param, opt


def _steps(param: torch.nn.Parameter, opt: TIPLOptimizer, n: int) -> None:
    for _ in range(n):
        opt.zero_grad()
        (-param.sum()).backward()
        opt.step()
        opt.maybe_jump()


def test_clearly_below_needs_both_the_relative_drop_and_two_standard_errors() -> None:
    assert clearly_below([100.0, 100.0], [200.0, 200.0], max_drop=0.1)
    assert not clearly_below([190.0, 190.0], [200.0, 200.0], max_drop=0.1)  # only 5% lower
    assert not clearly_below([100.0, 300.0], [200.0, 210.0], max_drop=0.1)  # within the noise
    assert not clearly_below([200.0, 200.0], [100.0, 100.0], max_drop=0.1)  # a rise
    assert clearly_below([-400.0, -420.0], [-200.0, -210.0], max_drop=0.1)  # negative returns
    assert not clearly_below([1.0], [200.0, 200.0], max_drop=0.1)  # one value is no evidence


def test_undo_jump_restores_the_weights_before_the_jump_and_a_fresh_window() -> None:
    param, opt = _optimizer()
    assert not opt.can_undo and not opt.undo_jump()
    _steps(param, opt, 2)  # snapshots 0 (at the first safe point), 1, 2: full -> jump
    assert opt.counters["jumps_accepted"] == 1
    jumped = param.item()
    assert jumped > 2.0 and opt.can_undo
    _steps(param, opt, 1)  # a gradient step after the jump is dropped with it
    assert opt.undo_jump(wait=2)
    assert param.item() == 2.0  # exactly the weights the jump started from
    assert opt.counters["jumps_undone"] == 1 and not opt.can_undo
    assert len(opt.history) == 1  # a fresh window at the restored weights
    _steps(param, opt, 2 + 2)  # the window fills (2 more) and waits 2 snapshots more...
    assert opt.counters["jumps_tried"] == 1
    _steps(param, opt, 1)  # ...then jumps again
    assert opt.counters["jumps_tried"] == 2


def test_a_gate_holds_a_due_jump_until_it_allows_it() -> None:
    param, opt = _optimizer()
    allowed = [False]
    opt.gate = lambda: allowed[0]
    _steps(param, opt, 4)
    assert opt.counters["jumps_tried"] == 0 and opt.counters["snapshots"] == 5
    allowed[0] = True
    _steps(param, opt, 1)
    assert opt.counters["jumps_tried"] == 1


def _attached(watch: dict[str, object] | None = None) -> tuple[torch.nn.Parameter, Attachment]:
    param = torch.nn.Parameter(torch.zeros(1))
    attachment = Attachment("test", "ppo", on_policy=True, setup=TIPLSetup(guard=False),
                            predictor="linear",
                            config={"context": 3, "horizon": 4, **(watch or {})})
    base = torch.optim.SGD([param], lr=1.0)
    attachment.wrap("policy", "policy", base, None)
    return param, attachment


def _update(param: torch.nn.Parameter, attachment: Attachment) -> None:
    """One on-policy iteration: an update, then the safe point."""
    opt = attachment.optimizers["policy"]
    opt.zero_grad()
    (-param.sum()).backward()
    opt.step()
    attachment.at_safe_point()


def test_watchdog_undoes_a_jump_whose_next_episodes_fall() -> None:
    param, attachment = _attached()
    attachment.at_safe_point()  # first snapshot
    attachment.record_returns([100.0, 101.0, 99.0, 100.0, 100.0])
    _update(param, attachment)
    _update(param, attachment)  # the window is full: jump
    opt = attachment.optimizers["policy"]
    assert opt.counters["jumps_accepted"] == 1
    start = 2.0
    attachment.record_returns([20.0, 22.0, 18.0, 21.0, 19.0])
    _update(param, attachment)  # verdict at this safe point: undone
    assert opt.counters["jumps_undone"] == 1
    assert param.item() == start
    summary = attachment.summary()["watchdog"]
    assert summary["undone"] == 1 and summary["kept"] == 0


def test_watchdog_keeps_a_jump_whose_next_episodes_hold_up() -> None:
    param, attachment = _attached()
    attachment.at_safe_point()
    attachment.record_returns([100.0, 101.0, 99.0, 100.0, 100.0])
    _update(param, attachment)
    _update(param, attachment)
    jumped = param.item()
    attachment.record_returns([150.0, 98.0, 120.0, 101.0, 130.0])
    _update(param, attachment)
    opt = attachment.optimizers["policy"]
    assert opt.counters["jumps_undone"] == 0
    assert param.item() == jumped + 1.0
    assert attachment.summary()["watchdog"]["kept"] == 1


def test_watchdog_holds_jumps_while_returns_fall_and_lets_them_go_after() -> None:
    param, attachment = _attached()
    opt = attachment.optimizers["policy"]
    attachment.at_safe_point()
    attachment.record_returns([200.0, 201.0, 199.0, 200.0, 200.0,
                               150.0, 152.0, 148.0, 151.0, 149.0])
    _update(param, attachment)
    _update(param, attachment)  # due, but held
    assert opt.counters["jumps_tried"] == 0
    assert attachment.summary()["watchdog"]["held"] == 1
    attachment.record_returns([150.0, 151.0, 149.0, 150.0, 150.0])  # the fall has stopped
    _update(param, attachment)
    assert opt.counters["jumps_tried"] == 1


def test_watchdog_off_or_without_episodes_never_acts() -> None:
    param, attachment = _attached({"watchdog": False})
    assert attachment.watchdog is None and attachment.summary()["watchdog"] is None
    attachment.record_returns([1.0, 2.0])  # ignored
    param2, quiet = _attached()
    for a, p in ((attachment, param), (quiet, param2)):
        a.at_safe_point()
        for _ in range(6):
            _update(p, a)
        assert a.optimizers["policy"].counters["jumps_accepted"] == 3
        assert a.optimizers["policy"].counters["jumps_undone"] == 0
    assert quiet.summary()["watchdog"] == {"kept": 0, "undone": 0, "unjudged": 3, "held": 0,
                                              "solved": 0, "solved_reached": False}


def test_undos_in_a_row_wait_longer_before_the_next_jump() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = TIPLOptimizer([param], "linear", base_class=torch.optim.SGD, lr=1.0,
                        config={"mode": "manual", "snapshot_every": 1, "context": 3})
    watchdog = ReturnWatchdog(WatchConfig(watch_episodes=2), {"policy": opt})
    opt.register_jump_hook(lambda _o, report: watchdog.jumped("policy", report))
    waits = []
    for _ in range(3):
        watchdog.tick()
        for ret in (100.0, 101.0):
            watchdog.episode(ret)
        _steps(param, opt, 8)  # enough to refill any wait below
        assert opt.can_undo
        for ret in (10.0, 11.0):
            watchdog.episode(ret)
        fresh_before = opt.counters["snapshots"]
        watchdog.tick()
        watchdog.check()
        waits.append(-opt._fresh)
        assert opt.counters["snapshots"] == fresh_before + 1
    assert waits == [0, 3, 9]  # (2^k - 1) windows of 3 snapshots
    assert watchdog.summary()["undone"] == 3


def test_watchdog_holds_jumps_while_far_below_the_best_level_so_far() -> None:
    param, attachment = _attached()
    opt = attachment.optimizers["policy"]
    attachment.at_safe_point()
    # A collapse: 200 for a while, then a long run of 10 (no longer *falling*, but far below).
    attachment.record_returns([200.0] * 5 + [10.0, 11.0, 9.0, 10.0, 10.0] * 3)
    _update(param, attachment)
    _update(param, attachment)
    assert opt.counters["jumps_tried"] == 0
    attachment.record_returns([150.0, 160.0, 140.0, 150.0, 150.0])  # back above half the best
    _update(param, attachment)
    assert opt.counters["jumps_tried"] == 1


def test_undone_and_held_jumps_reach_the_run_layer_tally() -> None:
    from tipl_opt.collect.runner import _JumpForwarder

    forwarder = _JumpForwarder(lambda report: None)
    forwarder.settle({"tipl": {"counters": {"actor": {"jumps_undone": 2, "jumps_held": 5},
                                            "critic": {"jumps_undone": 1}}}})
    assert forwarder.counts["jumps_undone"] == 3
    assert forwarder.counts["jumps_held"] == 5
    forwarder.settle({"algorithm": "ppo"})  # a run without TIPL: unchanged
    assert forwarder.counts["jumps_undone"] == 3


def test_a_verdict_given_by_the_gate_at_a_due_jump_leaves_no_jump_on_a_fresh_window() -> None:
    # keep_window + jump_every=2: the next jump is due before 5 episodes are in, so the gate
    # gives the verdict; when it undoes the previous jump, the window restarts and the due jump
    # must wait for it to fill (it used to be tried on a 1-snapshot window and raise).
    param, attachment = _attached({"keep_window": True, "jump_every": 2})
    opt = attachment.optimizers["policy"]
    attachment.at_safe_point()
    attachment.record_returns([100.0, 101.0, 99.0, 100.0, 100.0])
    _update(param, attachment)
    _update(param, attachment)  # jump 1
    assert opt.counters["jumps_accepted"] == 1
    attachment.record_returns([20.0, 22.0, 18.0])  # 3 of 5 episodes: no verdict at check()
    _update(param, attachment)
    _update(param, attachment)  # jump 2 due: the gate gives the verdict, undoes jump 1
    assert opt.counters["jumps_undone"] == 1 and opt.counters["jumps_tried"] == 1
    assert len(opt.history) == 1
    _update(param, attachment)
    assert opt.counters["jumps_tried"] == 1  # the fresh window is not full yet (2 of 3)
    _update(param, attachment)
    assert opt.counters["jumps_tried"] == 2


def test_watchdog_holds_jumps_at_the_solved_level() -> None:
    param, attachment = _attached({"solved_return": 475.0})
    opt = attachment.optimizers["policy"]
    attachment.at_safe_point()
    attachment.record_returns([500.0, 500.0, 480.0, 500.0, 490.0])  # mean 494: solved
    _update(param, attachment)
    _update(param, attachment)  # due, but held
    assert opt.counters["jumps_tried"] == 0
    assert attachment.summary()["watchdog"]["solved"] == 1
    attachment.record_returns([470.0, 468.0, 472.0, 470.0, 470.0])  # just below it
    _update(param, attachment)
    assert opt.counters["jumps_tried"] == 1


def _jumped_below_solved(solved: float, returns: list[float]
                         ) -> tuple[torch.nn.Parameter, Attachment, TIPLOptimizer]:
    """An attachment with ``solved_hold="after"`` whose first jump came with ``returns`` (below
    ``solved``) as the newest episodes."""
    param, attachment = _attached({"solved_return": solved, "solved_hold": "after"})
    opt = attachment.optimizers["policy"]
    attachment.at_safe_point()
    attachment.record_returns(returns)
    _update(param, attachment)
    _update(param, attachment)  # due and let through
    assert opt.counters["jumps_tried"] == 1
    return param, attachment, opt


def test_with_solved_hold_after_jumps_stay_held_once_the_level_was_reached() -> None:
    param, attachment, opt = _jumped_below_solved(475.0, [400.0, 420.0, 410.0, 400.0, 420.0])
    attachment.record_returns([500.0, 500.0, 480.0, 500.0, 490.0])  # mean 494: reached
    attachment.record_returns([470.0, 468.0, 472.0, 470.0, 470.0])  # dips below again
    for _ in range(6):  # several windows' worth: every due jump stays held
        _update(param, attachment)
    assert opt.counters["jumps_tried"] == 1
    assert attachment.summary()["watchdog"]["solved"] >= 2


def test_a_solved_level_reached_on_the_weights_of_an_undone_jump_does_not_count() -> None:
    param, attachment, opt = _jumped_below_solved(100.0, [100.0, 100.0, 100.0, 100.0, 96.0])
    attachment.record_returns([104.0])  # the newest 5 average 100: reached, on the jump
    assert attachment.summary()["watchdog"]["solved_reached"]
    attachment.record_returns([0.0, 0.0, 0.0, 0.0])  # the jump collapsed the returns
    _update(param, attachment)  # the verdict: undone, and the level it reached with it
    assert opt.counters["jumps_undone"] == 1
    assert not attachment.summary()["watchdog"]["solved_reached"]
    for _ in range(3):  # a fresh window fills; the next jump is not held as solved
        _update(param, attachment)
    assert opt.counters["jumps_tried"] == 2


def test_the_solved_level_comes_from_the_config_or_the_envs_threshold() -> None:
    assert solved_level(WatchConfig(), "CartPole-v1") == 475.0  # "auto"
    assert solved_level(WatchConfig(), "Pendulum-v1") == -200.0
    assert solved_level(WatchConfig(), None) is None
    assert solved_level(WatchConfig(), "NoSuchEnv-v0") is None
    assert solved_level(WatchConfig(solved_return=None), "CartPole-v1") is None
    assert solved_level(WatchConfig(solved_return=100.0), "CartPole-v1") == 100.0
    _, attachment = _attached()  # no env given: never held as solved
    assert attachment.watchdog is not None and attachment.watchdog.solved is None


def test_an_undo_decided_inside_the_critics_step_waits_for_the_actors_own_step() -> None:
    # SB3 SAC's order in one gradient step: the actor's forward pass, the critic's update (its
    # gate may give the verdict on the last jump of both parts), then the actor's backward
    # pass. Undoing the actor inside the critic's step wrote weights the actor's graph was
    # built on ("modified by an inplace operation", 5 of 40 SAC Pendulum runs failed).
    actor_w, critic_w = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    attachment = Attachment("test", "sac", on_policy=False, setup=TIPLSetup(guard=False),
                            predictor="linear",
                            config={"snapshot_every": 1, "context": 3, "horizon": 4})
    actor = attachment.wrap("actor", "actor", torch.optim.SGD([actor_w], lr=0.1), None)
    critic = attachment.wrap("critic", "critic", torch.optim.SGD([critic_w], lr=0.1), None)

    def gradient_step() -> None:
        action = actor_w * actor_w + actor_w  # saves actor_w for the backward pass
        critic.zero_grad()
        (-critic_w.sum()).backward()
        critic.step()
        actor.zero_grad()
        (-action.sum()).backward()
        actor.step()

    attachment.record_returns([100.0, 101.0, 99.0, 100.0, 100.0])
    while actor.counters["jumps_accepted"] == 0:
        gradient_step()
    assert critic.counters["jumps_accepted"] == 1  # both jumped in the same gradient step
    attachment.at_safe_point()
    before = actor_w.item()
    attachment.record_returns([20.0, 22.0, 18.0])  # too few for check(): the gate decides
    for _ in range(3):
        gradient_step()  # the critic's next jump is due: its gate undoes both jumps
    assert attachment.watchdog is not None and attachment.watchdog.counts["undone"] == 1
    assert actor.counters["jumps_undone"] == critic.counters["jumps_undone"] == 1
    assert actor_w.item() < before  # back before the jump, not a crash
