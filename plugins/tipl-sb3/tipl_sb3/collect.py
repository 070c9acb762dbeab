"""Train an SB3 agent with its own ``learn()`` and hand over snapshots of its weights.

Snapshots are taken at safe points only, where no update is half done:

* the initial weights, when training starts (env step 0);
* PPO/A2C: at a rollout start (``_on_rollout_start``), i.e. after the previous ``train()``
  and before new data is collected; never at a rollout end, where values and log-probs of the
  rollout are already computed and ``train()`` has yet to run;
* DQN/SAC/TD3: after any env step (``_on_step``); the weights do not change inside a
  collection, only in the ``train()`` calls between them. A check at or past ``total_steps``
  is left to the final snapshot, which comes after the last ``train()``;
* the final weights after ``learn()``, unless a snapshot was already taken at that env step.

With a :class:`~tipl_opt.adapters.TIPLSetup`, :func:`tipl_sb3.attach` wraps the optimizers
and its callback runs after :class:`SnapshotCallback`: at a PPO/A2C rollout boundary the
snapshot records the weights the gradient steps produced (and their return) before a jump
moves them, so a snapshot never shows a predicted point that no rollout has been collected
with; the jump's effect shows from the next snapshot on, and the snapshot and TIPL's own
history hold the same weights at that boundary. Off-policy agents jump inside ``train()``,
between snapshots.

A snapshot is due at the first safe point at or after each multiple of ``spec.every`` env
steps (:class:`~tipl_opt.adapters.SnapshotClock`). When none is due, a step costs one integer
comparison and allocates nothing.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import gymnasium as gym
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from tipl_opt.adapters.base import ProgressSink, SnapshotSink, TIPLSetup, TrainSpec
from tipl_opt.adapters.evaluation import GradStepCounter, SnapshotClock, evaluate, make_env
from tipl_opt.paths.spec import Snapshot, TaggedParam
from tipl_sb3.algorithms import algorithm_info
from tipl_sb3.build import build_model, constructor_kwargs, describe
from tipl_sb3.params import grad_step_part, owned_optimizers, tagged_parameters

logger = logging.getLogger(__name__)

PROGRESS_EVERY = 500
"""Off-policy runs report progress every this many env steps (on-policy: every rollout)."""


class SnapshotCallback(BaseCallback):
    """SB3 callback that emits a :class:`Snapshot` at safe points (see the module docstring).

    Each snapshot evaluates the current policy deterministically on ``eval_env`` (a separate
    env; its steps are counted in ``eval_steps``, never in ``num_timesteps``). ``env_steps`` is
    ``model.num_timesteps``; ``grad_steps`` is ``counter.count``. Call :meth:`finish` after
    ``learn()`` returns for the final snapshot.
    """

    def __init__(self, spec: TrainSpec, params: list[TaggedParam], counter: GradStepCounter,
                 eval_env: gym.Env[Any, Any], on_snapshot: SnapshotSink,
                 on_progress: ProgressSink) -> None:
        super().__init__(verbose=0)
        self.spec = spec
        self.params = tuple(params)
        self.counter = counter
        self.eval_env = eval_env
        self.on_snapshot = on_snapshot
        self.on_progress = on_progress
        self.on_policy = algorithm_info(spec.algo).on_policy
        self.clock = SnapshotClock(spec.every)
        self.eval_steps = 0
        self.snapshots = 0
        self.last_snapshot_at = -1
        self._next_progress = PROGRESS_EVERY
        self._next_check = min(self.clock.next_at, self._next_progress)

    # -- snapshots ------------------------------------------------------------------------
    def _act(self, obs: Any) -> Any:
        return self.model.predict(obs, deterministic=True)[0]

    def snapshot(self, env_steps: int) -> None:
        """Evaluate the current weights and hand one snapshot to ``on_snapshot``."""
        mean, std, used = evaluate(self._act, self.eval_env, self.spec.eval_episodes,
                                   self.spec.seed)
        self.eval_steps += used
        self.on_snapshot(Snapshot(params=self.params, env_steps=env_steps,
                                  grad_steps=self.counter.count, return_mean=mean,
                                  return_std=std, eval_steps=self.eval_steps))
        self.last_snapshot_at = env_steps
        self.snapshots += 1
        logger.debug("snapshot %d at env step %d (%d gradient steps), return %.2f",
                     self.snapshots, env_steps, self.counter.count, mean)

    def finish(self) -> None:
        """Take the final snapshot (after ``learn()``) unless one exists at this env step."""
        env_steps = int(self.model.num_timesteps)
        if env_steps != self.last_snapshot_at:
            self.snapshot(env_steps)
        self.on_progress(env_steps)

    # -- SB3 hooks ------------------------------------------------------------------------
    def _on_training_start(self) -> None:
        self.snapshot(int(self.model.num_timesteps))
        self.on_progress(int(self.model.num_timesteps))

    def _on_rollout_start(self) -> None:
        if not self.on_policy:
            return
        env_steps = int(self.model.num_timesteps)
        self.on_progress(env_steps)
        if self.clock.due(env_steps):
            self.snapshot(env_steps)

    def _on_step(self) -> bool:
        if not self.on_policy and self.model.num_timesteps >= self._next_check:
            self._off_policy_check(int(self.model.num_timesteps))
        return True

    def _off_policy_check(self, env_steps: int) -> None:
        if env_steps >= self._next_progress:
            self.on_progress(env_steps)
            self._next_progress = (env_steps // PROGRESS_EVERY + 1) * PROGRESS_EVERY
        if env_steps < self.spec.total_steps and self.clock.due(env_steps):
            self.snapshot(env_steps)
        self._next_check = min(self.clock.next_at, self._next_progress)


def run_collection(spec: TrainSpec, on_snapshot: SnapshotSink, on_progress: ProgressSink,
                   tipl: TIPLSetup | None = None,
                   tensorboard: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Build the agent of ``spec``, train it for ``spec.total_steps`` env steps with
    :class:`SnapshotCallback` and return the hyperparameters used (see
    :func:`tipl_sb3.build.describe`).

    With ``tipl``, the optimizers are wrapped as it describes (:func:`tipl_sb3.attach`) and
    the hyperparameters gain a ``"tipl"`` entry: the predictor, the jump config and the final
    counters of each TIPL optimizer. ``optimizer`` still names SB3's own (base) optimizers.

    ``grad_steps`` counts ``step()`` calls of the policy optimizer (PPO/A2C/DQN) or of the
    critic optimizer (SAC/TD3, which steps once per gradient step). PPO/A2C train until the
    first rollout boundary at or after ``total_steps``, so the last ``env_steps`` may exceed it.

    ``tensorboard``: a folder for SB3's logger to write TensorBoard events into (SB3's own
    ``train/``, ``rollout/`` and ``time/`` scalars and TIPL's ``tipl/`` jump reports).
    """
    started = time.perf_counter()
    model = build_model(spec)
    if tensorboard is not None:
        from stable_baselines3.common.logger import configure

        model.set_logger(configure(os.fspath(tensorboard), ["tensorboard"]))
    used_policy_kwargs = constructor_kwargs(spec)["policy_kwargs"]
    optimizers = owned_optimizers(model, spec.algo)
    # On the base optimizer: a TIPL optimizer steps it once per gradient step.
    counter = GradStepCounter(optimizers[grad_step_part(spec.algo)])
    eval_env = make_env(spec.env_id)
    try:
        callback = SnapshotCallback(spec, tagged_parameters(model, spec.algo), counter,
                                    eval_env, on_snapshot, on_progress)
        tipl_callback = None
        if tipl is not None:
            from tipl_sb3.attachment import attach_setup

            tipl_callback = attach_setup(model, tipl)
        model.learn(total_timesteps=spec.total_steps,
                    callback=callback if tipl_callback is None
                    else CallbackList([callback, tipl_callback]))  # snapshot, then jump
        callback.finish()
        hyperparameters = describe(model, used_policy_kwargs, optimizers)
        if tipl_callback is not None:
            hyperparameters["tipl"] = tipl_callback.describe()
    finally:
        counter.remove()
        eval_env.close()
        _close_training_env(model)
        if tensorboard is not None:
            model.logger.close()
    logger.info("sb3 %s on %s (seed %d): %d env steps, %d snapshots, %d gradient steps in %.1fs",
                spec.algo, spec.env_id, spec.seed, model.num_timesteps, callback.snapshots,
                counter.count, time.perf_counter() - started)
    return hyperparameters


def _close_training_env(model: BaseAlgorithm) -> None:
    env = model.get_env()
    if env is not None:
        env.close()

