"""``TIPLCallback``: the SB3 callback that tells the TIPL optimizers of an agent when to jump.

Safe points, where no update is half done:

* ``manual`` mode (PPO/A2C always): at every rollout start, i.e. after the previous
  ``train()`` and before new data is collected. Never at a rollout end: there the values and
  log-probabilities of the rollout are already computed and ``train()`` has yet to use them.
  Off-policy agents in ``manual`` mode jump after an env step, between two ``train()`` calls.
* ``auto`` mode (DQN/SAC/TD3 by default): inside the optimizer's own ``step()``; the callback
  has nothing to do (the guards read the replay buffer themselves).

The PPO/A2C guard observes the newest rollout observations, captured at each rollout end
(:class:`~tipl_sb3.guards.RecentRolloutObservations`). The return watchdog
(:mod:`tipl_opt.adapters.watchdog`) reads finished episodes' returns from the ``Monitor``
information SB3 puts in each step's ``infos`` (SB3 wraps envs in ``Monitor`` by default; a
``VecEnv`` built without it gives the watchdog nothing to judge by).

Every jump is recorded in the agent's own logger (``model.logger.record``), so SB3's
TensorBoard, CSV and W&B outputs show it next to ``train/`` and ``rollout/``: ``tipl/accepted``,
``tipl/fraction``, ``tipl/relative_size``, ``tipl/guard``, ``tipl/prediction_ms``,
``tipl/horizon`` (:func:`tipl_opt.events.jump_scalars`; SAC/TD3 with both parts:
``tipl/actor/...`` and ``tipl/critic/...``) and the running ``tipl/jumps_accepted`` and
``tipl/jumps_tried``. SB3 writes them at its next ``dump``; the callback dumps once more at the
end of training if a jump came after SB3's last one.
"""

from __future__ import annotations

import logging
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from tipl_opt.adapters.attachment import Attachment
from tipl_opt.errors import ConfigError
from tipl_opt.events import jump_scalars
from tipl_opt.optimizer import TIPLOptimizer
from tipl_sb3.guards import RecentRolloutObservations

logger = logging.getLogger(__name__)


class TIPLCallback(BaseCallback):
    """Drives the :class:`~tipl_opt.optimizer.TIPLOptimizer` s that :func:`tipl_sb3.attach`
    put into ``model``; pass it to ``model.learn(callback=...)``.

    * ``attachment``: the :class:`~tipl_opt.adapters.attachment.Attachment` holding the TIPL
      optimizers by part (``"policy"``, or ``"actor"``/``"critic"``);
    * ``rollout_observations``: kept for the PPO/A2C KL guard (``None`` without a guard).

    The callback may be reused across ``learn()`` calls on the same model; it refuses another
    model.
    """

    def __init__(self, model: BaseAlgorithm, attachment: Attachment,
                 rollout_observations: RecentRolloutObservations | None) -> None:
        super().__init__(verbose=0)
        self.attached_to = model
        self.attachment = attachment
        self.on_policy = attachment.on_policy
        self.rollout_observations = rollout_observations
        several = len(attachment.optimizers) > 1
        for part, opt in attachment.optimizers.items():
            opt.register_jump_hook(self._recorder(part if several else None))

    def _recorder(self, part: str | None) -> Any:
        def record(optimizer: TIPLOptimizer, report: Any) -> None:
            log = self.attached_to.logger
            for key, value in jump_scalars(report, part).items():
                log.record(key, value)
            prefix = f"tipl/{part}/" if part else "tipl/"
            log.record(f"{prefix}jumps_accepted", optimizer.counters["jumps_accepted"])
            log.record(f"{prefix}jumps_tried", optimizer.counters["jumps_tried"])

        return record

    @property
    def optimizers(self) -> dict[str, TIPLOptimizer]:
        """The TIPL optimizers by part."""
        return self.attachment.optimizers

    # -- what it did ------------------------------------------------------------------------
    def counters(self) -> dict[str, dict[str, int]]:
        """Snapshot and jump counters of each TIPL optimizer, by part."""
        return self.attachment.counters()

    def describe(self) -> dict[str, Any]:
        """Predictor, parts, jump config, guards and counters by part (JSON-serialisable; see
        :meth:`~tipl_opt.adapters.attachment.Attachment.summary`)."""
        return self.attachment.summary()

    # -- SB3 hooks --------------------------------------------------------------------------
    def _on_training_start(self) -> None:
        if self.model is not self.attached_to:
            raise ConfigError("This TIPLCallback was made by attach() for another model; call "
                              "tipl_sb3.attach(model) for the model you train.")

    def _on_training_end(self) -> None:
        if any(key.startswith("tipl/") for key in self.logger.name_to_value):
            self.logger.dump(self.num_timesteps)  # a jump SB3 has not written yet

    def _on_rollout_start(self) -> None:
        if self.on_policy:
            self.attachment.at_safe_point(skip=self._lacks_observations)

    def _on_rollout_end(self) -> None:
        # Only read: the weights must not change between here and train().
        if self.rollout_observations is not None:
            self.rollout_observations.capture(self.model.rollout_buffer)  # type: ignore[attr-defined]

    def _on_step(self) -> bool:
        if self.attachment.watchdog is not None:
            infos = self.locals.get("infos") or ()
            self.attachment.record_returns(
                info["episode"]["r"] for info in infos
                if isinstance(info, dict) and "episode" in info)
        if not self.on_policy and (self.attachment.manual or self.attachment.watchdog):
            # Between two train() calls: the watchdog's verdicts, and manual-mode jumps.
            self.attachment.at_safe_point()
        return True

    def _lacks_observations(self, opt: TIPLOptimizer) -> bool:
        # Only after resuming a saved history: no rollout seen yet to check a jump on. With no
        # observations the guard would measure inf and reject the jump: skip the safe point
        # (no snapshot, no jump) instead.
        lacks = (opt.guard is not None and self.rollout_observations is not None
                 and not self.rollout_observations.ready and len(opt.history) > 0)
        if lacks:
            logger.info("TIPL: skipping the safe point at env step %d (no rollout observed "
                        "yet for the guard)", self.num_timesteps)
        return lacks
