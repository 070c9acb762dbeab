"""Train a Tianshou agent with its own trainer and hand over snapshots of its weights.

Snapshots are taken at safe points only: before training (the initial weights), in the
trainer's ``training_fn`` hook, which Tianshou calls right before every collect step, i.e. after
the previous update finished (for PPO: a rollout boundary), and after training (the final
weights). Between snapshots the only work added to a collect step is a counter comparison.

With a :class:`~tipl_opt.adapters.TIPLSetup`, the optimizers are TIPLOptimizers
(:mod:`tipl_tianshou.attachment`): PPO jumps in ``training_fn`` before the snapshot is taken (so a
snapshot holds the weights the next rollout acts with), DQN and SAC inside their updates.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from tipl_opt.adapters.base import ProgressSink, SnapshotSink, TIPLSetup, TrainSpec
from tipl_opt.adapters.evaluation import GradStepCounter, SnapshotClock, evaluate, make_env
from tipl_opt.errors import ConfigError
from tipl_opt.paths.spec import Snapshot, TaggedParam
from tipl_tianshou.algorithms import StepBudget, plan_budget, resolve
from tipl_tianshou.build import Agent, OptimWrapper, build_agent, build_collector
from tipl_tianshou.build import optimized_parameters as _optimized_parameters
from tipl_tianshou.jump_log import log_jumps, tensorboard_logger
from tipl_tianshou.weights import inference_mode, policy_act

logger = logging.getLogger(__name__)


class SnapshotTaker:
    """Evaluates the current policy and emits one :class:`Snapshot` per call."""

    def __init__(self, agent: Agent, spec: TrainSpec, eval_env: gym.Env[Any, Any],
                 counter: GradStepCounter, sink: SnapshotSink) -> None:
        self.agent = agent
        self.spec = spec
        self.eval_env = eval_env
        self.counter = counter
        self.sink = sink
        self.params = _optimized_parameters(agent)
        self.eval_steps = 0
        self.last_env_steps = -1
        self.count = 0
        self._act = policy_act(agent)

    def __call__(self, env_steps: int) -> None:
        with inference_mode(self.agent):
            mean, std, used = evaluate(self._act, self.eval_env, self.spec.eval_episodes,
                                       self.spec.seed)
        self.eval_steps += used
        self.sink(Snapshot(
            params=[TaggedParam(p.name, p.role, p.tensor.detach()) for p in self.params],
            env_steps=env_steps, grad_steps=self.counter.count, return_mean=mean,
            return_std=std, eval_steps=self.eval_steps,
        ))
        self.last_env_steps = env_steps
        self.count += 1
        logger.debug("snapshot %d at env step %d (%d gradient steps), return %.2f",
                     self.count, env_steps, self.counter.count, mean)


def _seed_everything(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)


def _epsilon_schedule(settings: dict[str, Any], total_steps: int) -> Callable[[int], float]:
    start = float(settings["eps_train"])
    final = start if settings["eps_train_final"] is None else float(settings["eps_train_final"])
    span = settings["eps_decay_steps"] or max(1, total_steps // 2)

    def eps(env_steps: int) -> float:
        return start + (final - start) * min(1.0, env_steps / span)

    return eps


def _trainer_params(agent: Agent, settings: dict[str, Any], budget: StepBudget,
                    collector: Any, training_fn: Callable[[int, int], None],
                    logger: Any = None) -> Any:
    from tianshou.trainer import OffPolicyTrainerParams, OnPolicyTrainerParams

    common: dict[str, Any] = {
        "training_collector": collector, "test_collector": None, "logger": logger,
        "max_epochs": budget.max_epochs, "epoch_num_steps": budget.epoch_num_steps,
        "collection_step_num_env_steps": budget.collect, "training_fn": training_fn,
        "verbose": False, "show_progress": False,
    }
    if agent.on_policy:
        return OnPolicyTrainerParams(
            **common, batch_size=settings["batch_size"],
            update_step_num_repetitions=settings["update_step_num_repetitions"])
    return OffPolicyTrainerParams(
        **common, batch_size=settings["batch_size"],
        update_step_num_gradient_steps_per_sample=(
            settings["update_step_num_gradient_steps_per_sample"]))


def run_collection(spec: TrainSpec, on_snapshot: SnapshotSink, on_progress: ProgressSink,
                   wrap_optim: OptimWrapper | None = None,
                   tipl: TIPLSetup | None = None,
                   tensorboard: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Train ``spec`` with Tianshou's trainer and send every snapshot to ``on_snapshot``.

    Snapshots: the initial weights (env step 0), one at the first ``training_fn`` call at or
    after each multiple of ``spec.every`` env steps, and the final weights. Each holds the
    tensors the optimizers own (see :func:`tipl_tianshou.build.optimized_parameters`);
    ``grad_steps`` counts ``step()`` calls of one optimizer: the actor-critic optimizer (PPO),
    the Q-network optimizer (DQN), or the first critic's optimizer (SAC, stepped once per
    gradient step, like the second critic and the actor). Returns are those of
    ``spec.eval_episodes`` deterministic episodes on a separate env; their steps are counted
    in ``eval_steps``, never in ``env_steps``.

    ``on_progress`` receives the training env steps before every collect step and at the end.
    ``wrap_optim`` replaces the Adam factory of every snapshotted optimizer (identity if
    ``None``). ``tipl`` attaches TIPLOptimizers instead (see :mod:`tipl_tianshou.attachment`); the
    returned hyperparameters then hold a ``"tipl"`` entry (predictor, jump config, guards,
    final counters per optimizer). ``tensorboard``: a folder where Tianshou's
    ``TensorboardLogger`` writes the trainer's scalars and every jump's report
    (:mod:`tipl_tianshou.jump_log`). Seeds numpy's and torch's global generators with
    ``spec.seed`` (after loading the predictor). Returns the hyperparameters used
    (JSON-serialisable).
    """
    from tianshou.env import DummyVectorEnv

    from tipl_tianshou.attachment import TIPLAttachment, rollout_size

    started = time.perf_counter()
    settings = resolve(spec.algo, spec.hyperparams)
    budget = plan_budget(spec.algo, settings, spec.total_steps)
    if tipl is not None and wrap_optim is not None:
        raise ConfigError("pass either wrap_optim or tipl, not both")
    attachment = (TIPLAttachment(spec.algo, tipl, rollout_size(spec.algo, settings, budget.collect),
                                 env_id=spec.env_id)
                  if tipl is not None else None)
    _seed_everything(spec.seed)

    eval_env = make_env(spec.env_id)
    train_envs = DummyVectorEnv([lambda: make_env(spec.env_id)])
    board = tensorboard_logger(tensorboard) if tensorboard is not None else None
    try:
        train_envs.seed(spec.seed)
        agent = build_agent(spec.algo, eval_env, settings, spec.hidden_sizes, spec.activation,
                            attachment.wrappers() if attachment else wrap_optim)
        buffer_size = budget.collect if agent.on_policy else settings["buffer_size"]
        collector = build_collector(agent, train_envs, buffer_size,
                                    attachment.collector_class(agent) if attachment else None)
        if attachment is not None:
            attachment.bind(agent, collector)
            if board is not None:
                log_jumps(attachment.optimizers, board,
                          lambda: budget.warmup + collector.collect_step)
        counter = GradStepCounter(agent.counted)
        take = SnapshotTaker(agent, spec, eval_env, counter, on_snapshot)
        take(0)

        if budget.warmup:
            collector.reset()
            collector.collect(n_step=budget.warmup, random=True)
        clock = SnapshotClock(spec.every)
        set_eps: Callable[[float], None] | None = None
        if spec.algo == "dqn":
            from tianshou.algorithm.modelfree.dqn import DiscreteQLearningPolicy

            assert isinstance(agent.policy, DiscreteQLearningPolicy)
            schedule = _epsilon_schedule(settings, spec.total_steps)
            set_eps = agent.policy.set_eps_training

        def training_fn(epoch: int, trainer_env_steps: int) -> None:
            env_steps = budget.warmup + trainer_env_steps
            on_progress(env_steps)
            if set_eps is not None:
                set_eps(schedule(env_steps))
            if attachment is not None:
                attachment.at_safe_point()
            if clock.due(env_steps):
                take(env_steps)

        info = agent.algorithm.run_training(
            _trainer_params(agent, settings, budget, collector, training_fn, board))
        final_steps = budget.warmup + int(info.train_step)
        on_progress(final_steps)
        if take.last_env_steps != final_steps:
            take(final_steps)
        counter.remove()
    finally:
        train_envs.close()
        eval_env.close()
        if board is not None:
            board.writer.close()

    logger.info("tianshou %s on %s (seed %d): %d env steps, %d gradient steps, %d snapshots "
                "in %.1f s", spec.algo.upper(), spec.env_id, spec.seed, final_steps,
                counter.count, take.count, time.perf_counter() - started)
    extra = {"tipl": attachment.summary()} if attachment is not None else {}
    return {
        **settings,
        "algorithm": spec.algo,
        "warmup_steps": budget.warmup,
        "collection_step_num_env_steps": budget.collect,
        "epoch_num_steps": budget.epoch_num_steps,
        "max_epochs": budget.max_epochs,
        "planned_env_steps": budget.planned_env_steps,
        "env_steps": final_steps,
        "grad_steps": counter.count,
        "num_train_envs": 1,
        "buffer_size": buffer_size,
        "net": agent.description,
        **extra,
    }
