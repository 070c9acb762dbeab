"""The contract between tipl-opt and an RL library: what an adapter plugin provides."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from pydantic import BaseModel, ConfigDict, Field

from tipl_opt.paths.spec import Snapshot

Activation = Literal["tanh", "relu"]


class TrainSpec(BaseModel):
    """One training run to collect, as an adapter receives it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    algo: str
    """Algorithm name, lower case (``"ppo"``, ``"sac"``...)."""
    env_id: str
    """A registered gymnasium id such as ``"CartPole-v1"``."""
    seed: int
    """Seeds the library, the training env and the evaluation episodes."""
    total_steps: int = Field(gt=0)
    """Training environment steps (evaluation steps are not counted)."""
    every: int = Field(gt=0)
    """Environment steps between snapshots; on-policy algorithms snapshot at the first rollout
    boundary at or after each multiple. The initial and final weights are always recorded."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of every network (actor, critic, Q)."""
    activation: Activation = "tanh"
    eval_episodes: int = Field(default=5, ge=0)
    """Deterministic evaluation episodes per snapshot, on a separate env (0: no evaluation)."""
    hyperparams: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword arguments for the library's algorithm (``{"learning_rate": 1e-3}``)."""


class TIPLSetup(BaseModel):
    """How an adapter attaches :class:`~tipl_opt.optimizer.TIPLOptimizer` to the agent it trains.

    The adapter wraps the optimizer(s) the library built (keeping the library's own defaults as
    the base), picks the jump mode (manual at rollout boundaries for on-policy algorithms, auto
    for off-policy ones) and feeds the guard with recent observations.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    predictor: str = "default"
    """A registered name (``linear``), ``default``, or a checkpoint folder."""
    jump: dict[str, Any] = Field(default_factory=dict)
    """:class:`~tipl_opt.jumps.JumpConfig` fields; the adapter fills ``mode`` (and may pick
    ``snapshot_every`` so snapshots fall on its safe points) unless given here."""
    guard: bool = True
    """Guard jumps with the policy's behaviour change (KL or action distance)."""
    guard_limit: float | None = None
    """Trust region of the guard; ``None``: the adapter's default for the algorithm."""
    value_limit: float | None = Field(default=None, gt=0)
    """Trust region of the value-head check of an on-policy jump (PPO/A2C, where one optimizer
    trains the policy and its critic): the largest relative change of V; ``None``: the
    default, :data:`tipl_opt.adapters.attachment.VALUE_LIMIT`."""
    entropy_limit: float | None = Field(default=None, gt=0)
    """Largest drop of an on-policy policy's entropy a jump may cause, in nats per action
    dimension; ``None``: the default, :data:`tipl_opt.adapters.attachment.ENTROPY_LIMIT`
    (0.02)."""
    value_fit_limit: float | None = Field(default=None, gt=0)
    """Largest ratio of the value head's RMS error on the newest rollout's returns after and
    before an on-policy jump (PPO/A2C; 1: no rise; :class:`~tipl_opt.guard.ValueFitGuard`);
    ``None``: not checked."""
    value_grad_limit: float | None = Field(default=None, gt=0)
    """Largest ratio of the norm of the value head's gradient on the newest rollout's returns
    after and before an on-policy jump (PPO/A2C; 1: no rise;
    :class:`~tipl_opt.guard.ValueGradGuard`); ``None``: the algorithm's default
    (:data:`tipl_opt.adapters.attachment.VALUE_GRAD_LIMIT_BY_DEFAULT`: 2 for PPO, not checked
    for the others). A very large limit (``1e9``) turns the check off."""
    targets: Literal["actor", "critic", "both"] | None = None
    """What jumps: which optimizers get TIPL when the algorithm has several (SAC, TD3), which
    parameters of its one optimizer a jump moves for PPO/A2C (``acceptance.roles``,
    :func:`tipl_opt.adapters.attachment.jump_roles`); ``None``: the default for the
    algorithm (:func:`tipl_opt.adapters.attachment.targets_of`: ``both``, TD3 ``actor``)."""


SnapshotSink = Callable[[Snapshot], None]
"""Receives each snapshot as soon as it is taken (weights are copied by the sink)."""

ProgressSink = Callable[[int], None]
"""Receives the number of training env steps done so far, now and then."""


@runtime_checkable
class Adapter(Protocol):
    """An RL library as tipl-opt sees it. Registered through ``tipl_register_adapters``.

    The adapter imports its library lazily (inside methods), so listing plugins stays fast.
    """

    name: str
    """Short library name used on the command line (``"sb3"``)."""
    algorithms: tuple[str, ...]
    """Algorithms :meth:`collect` can train."""

    def library_version(self) -> str:
        """Version of the wrapped RL library."""
        ...

    def check(self, spec: TrainSpec) -> None:
        """Raise :class:`~tipl_opt.errors.IncompatibleEnvError` or
        :class:`~tipl_opt.errors.ConfigError` if ``spec`` cannot be trained (unknown algorithm,
        action space the algorithm cannot handle, bad hyperparameter). Cheap: builds no agent."""
        ...

    def collect(self, spec: TrainSpec, on_snapshot: SnapshotSink, on_progress: ProgressSink,
                tipl: TIPLSetup | None = None,
                tensorboard: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """Train with the library's own algorithm and hand every snapshot to ``on_snapshot``.

        With ``tipl`` given, the agent's optimizer(s) are wrapped in a TIPLOptimizer as it
        describes, and each jump reaches the ``tipl_on_jump`` hook.

        With ``tensorboard`` given (a folder for this run alone), the library's own logger
        writes TensorBoard events there, and each jump's report goes to that logger as
        ``tipl/`` scalars (:func:`tipl_opt.events.jump_scalars`). The run layer passes
        ``tipl`` and ``tensorboard`` only when set, so an adapter without TensorBoard support
        may leave the parameter out (``--tensorboard`` then fails that run by name).

        Snapshots hold the parameters the optimizer(s) own, tagged with their role, never
        target networks. Returns the hyperparameters actually used (JSON-serialisable), which
        go into the learning path's metadata.
        """
        ...

    def evaluate_weights(self, spec: TrainSpec, params: Mapping[str, torch.Tensor],
                         episodes: int) -> tuple[float, float]:
        """Build a fresh agent as ``spec`` describes (``spec.hyperparams`` may be empty), load
        ``params`` (named as in this adapter's snapshots; all of them must be given) into it,
        and return the (mean, std) return over ``episodes`` deterministic evaluation episodes
        seeded like :func:`tipl_opt.adapters.evaluate`. Raise
        :class:`~tipl_opt.errors.ConfigError` when a name or shape does not match the agent."""
        ...
