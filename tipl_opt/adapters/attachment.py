"""Attaching :class:`~tipl_opt.optimizer.TIPLOptimizer` to an agent: the rules that are the same
for every RL library, in one place.

An adapter plugin keeps only what is library-specific: it builds the agent, lists the agent's
optimizer *parts* (each with a :data:`PartKind`, its base optimizer and its parameter specs),
drives the safe points, and hands each part's guard the network and the batch to measure on
(:class:`GuardInputs`). Everything else lives here:

* the jump mode and defaults per algorithm (:func:`jump_config`: on-policy algorithms jump
  only at rollout boundaries, ``mode="manual"``, a snapshot at each; off-policy ones inside
  ``step()``, ``mode="auto"``);
* which parts get TIPL (:func:`select_parts`) and the guard of each kind with its default
  trust region (:data:`GUARDS`);
* the predictor, resolved once (with its fallback to ``linear``) and shared by every part;
* the return watchdog (:mod:`tipl_opt.adapters.watchdog`), fed the finished episodes'
  returns by the adapter (:meth:`Attachment.record_returns`), which undoes a jump the next
  episodes reject and holds jumps while returns fall or sit at the task's solved level;
* the summary that goes into a learning path's hyperparameters (:meth:`Attachment.summary`).

A new adapter's attachment, in outline::

    attachment = Attachment("mylib", algo, on_policy=True, setup=setup)
    for part, kind, base, specs in my_parts(agent):          # library-specific
        install(agent, part, attachment.wrap(part, kind, base, specs))
    for part in attachment.optimizers:
        attachment.set_guard(part, GuardInputs(my_net(part), my_batch))
    ...  # each finished training episode: attachment.record_returns([ret])
    ...  # at each rollout boundary: attachment.at_safe_point()
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import ValidationError

from tipl_opt.adapters.base import TIPLSetup
from tipl_opt.adapters.watchdog import ReturnWatchdog
from tipl_opt.errors import ConfigError
from tipl_opt.guard import (
    ActionDistanceGuard,
    AllOfGuard,
    EntropyDropGuard,
    GreedyActionGuard,
    JumpGuard,
    KLGuard,
    QChangeGuard,
    ValueChangeGuard,
    ValueFitGuard,
    ValueGradGuard,
    WithScore,
)
from tipl_opt.jumps import JumpConfig, WatchConfig, explicit_fields
from tipl_opt.optimizer import TIPLOptimizer, resolve_predictor
from tipl_opt.paths.spec import ParamSpec
from tipl_opt.predictors.base import Predictor
from tipl_opt.thresholds import threshold_for

logger = logging.getLogger(__name__)

PartKind = Literal["policy", "q", "actor", "critic"]
"""What an optimizer part trains, which decides its guard: ``policy`` (a stochastic on-policy
actor, with or without its critic), ``q`` (a DQN Q-network), ``actor`` (a deterministic or
squashed off-policy actor), ``critic`` (an off-policy Q critic)."""

Targets = Literal["actor", "critic", "both"]

GUARDS: dict[str, tuple[type[Any], float]] = {
    "policy": (KLGuard, 0.02),
    "q": (GreedyActionGuard, 0.1),
    "actor": (ActionDistanceGuard, 0.1),
    "critic": (QChangeGuard, 0.1),
}
"""Guard class and default trust region per :data:`PartKind`: mean KL of the action
distribution (policy), share of greedy actions that change (q), mean distance of deterministic
actions in [-1, 1] units (actor), relative change of Q (critic)."""


@dataclass(frozen=True)
class GuardInputs:
    """What a part's guard measures, given by the adapter.

    * ``model``: the part's network as the guard of its kind calls it: ``obs [N, *obs] ->
      torch.distributions.Distribution`` (policy), ``-> Q [N, A]`` (q), ``-> actions [N, *act]``
      in [-1, 1] units (actor), ``(obs, actions) -> Q [N]`` or a tuple of them (critic);
    * ``batch``: called at every jump for the newest data: observations ``[N, *obs]``, or for a
      critic the pair ``(observations, actions)``.
    """

    model: Callable[..., Any]
    batch: Callable[[], Any]
    values: Callable[[torch.Tensor], torch.Tensor] | None = None
    """A ``policy`` part's value head, ``obs [N, *obs] -> V [N]``, when the same optimizer
    trains it (PPO/A2C): the jump must then also keep V within :data:`VALUE_LIMIT`."""
    score: Callable[[], float] | None = None
    """How good the weights now in the model are on the newest data (higher is better; PPO:
    the surrogate objective on the last rollout), for the ``search`` acceptance rule."""
    value_targets: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = None
    """A ``policy`` part's newest rollout as ``(observations [N, *obs], returns [N])``: the
    value head's targets, for the value-fit and value-gradient checks
    (:class:`~tipl_opt.guard.ValueFitGuard`, :class:`~tipl_opt.guard.ValueGradGuard`;
    ``TIPLSetup.value_fit_limit``, ``value_grad_limit``)."""


VALUE_LIMIT = 0.1
"""Largest relative change of an on-policy value head a jump may cause (as for Q critics)."""


ENTROPY_LIMIT: float | None = 0.02
"""Largest drop of a ``policy`` part's entropy (nats per action dimension) a jump may cause by
default (:class:`~tipl_opt.guard.EntropyDropGuard`); ``None``: not checked. Measured on SB3 PPO
(20 paired seeds): on Acrobot-v1 it keeps jumps from extrapolating an early entropy collapse
(mean return over training -10 against the base instead of -28, runs stuck at -500 in the
second half 1 instead of 2), on InvertedPendulum-v5 it changes no run's steps to 950."""


VALUE_GRAD_LIMIT_BY_DEFAULT: dict[str, tuple[float, str]] = {
    "ppo": (2.0, "on SB3 PPO Reacher-v5 (20 paired seeds) it removed the default's loss of "
                 "return over training (-0.4 [-2.5, +1.7] against the base instead of -3.1 "
                 "[-5.8, -0.3]); on the five other PPO tasks of the suite it needed 0.86-1.00 "
                 "of the default's env steps (median of pairs)"),
}
"""Algorithms whose on-policy jumps the value-gradient check
(:class:`~tipl_opt.guard.ValueGradGuard`) limits by default, with the limit and the measurement
that decided it (docs/benchmarks.md, "The critic's gradient and the actor's step"): a jump may
at most double the norm of the critic's gradient on the newest returns."""


def value_grad_limit_of(setup: TIPLSetup, algo: str) -> float | None:
    """The value-gradient limit in effect for ``setup`` on ``algo``: its own, else the
    algorithm's default (:data:`VALUE_GRAD_LIMIT_BY_DEFAULT`), else ``None`` (not checked)."""
    if setup.value_grad_limit is not None:
        return setup.value_grad_limit
    found = VALUE_GRAD_LIMIT_BY_DEFAULT.get(algo.lower())
    return found[0] if found is not None else None


def entropy_limit_of(setup: TIPLSetup) -> float | None:
    """The entropy-drop limit in effect for ``setup``: its own, else :data:`ENTROPY_LIMIT`."""
    return ENTROPY_LIMIT if setup.entropy_limit is None else setup.entropy_limit


def make_guard(kind: str, inputs: GuardInputs, limit: float,
               value_limit: float = VALUE_LIMIT,
               entropy_limit: float | None = ENTROPY_LIMIT,
               value_fit_limit: float | None = None,
               value_grad_limit: float | None = None) -> JumpGuard:
    """The guard of a part of ``kind`` (see :data:`GUARDS`); a ``policy`` part whose optimizer
    also trains the value head (``inputs.values``) gets the KL guard and a value-change guard
    (relative change at most ``value_limit``) together (:class:`~tipl_opt.guard.AllOfGuard`):
    a jump moves both networks, and an unchecked critic jump can wreck the advantages the next
    updates follow. With ``entropy_limit`` a ``policy`` part's jump must also not make the
    policy more certain by more than that many nats per action dimension. With
    ``value_fit_limit`` (and ``inputs.value_targets``) the jump must also not raise the value
    head's RMS error on the newest returns above that many times its error before
    (:class:`~tipl_opt.guard.ValueFitGuard`), with ``value_grad_limit`` not make the norm of
    its gradient there more than that many times what it was
    (:class:`~tipl_opt.guard.ValueGradGuard`)."""
    guard_class, _ = GUARDS[kind]
    guard: JumpGuard = guard_class(inputs.model, inputs.batch, limit)
    parts: list[tuple[JumpGuard, str]] = []
    if kind == "policy" and inputs.values is not None:
        parts.append((ValueChangeGuard(inputs.values, inputs.batch, value_limit), "critic"))
    # a policy part's value head and its newest returns, where the adapter gives them
    values = inputs.values if kind == "policy" else None
    targets = inputs.value_targets if kind == "policy" else None
    if values is not None and targets is not None and value_fit_limit is not None:
        parts.append((ValueFitGuard(values, targets, value_fit_limit), "critic"))
    if kind == "policy" and entropy_limit is not None:
        parts.append((EntropyDropGuard(inputs.model, inputs.batch, entropy_limit), "actor"))
    if values is not None and targets is not None and value_grad_limit is not None:
        parts.append((ValueGradGuard(values, targets, value_grad_limit), "critic"))
    if parts:
        guard = AllOfGuard(guard, *(g for g, _ in parts),
                           scopes=("actor", *(scope for _, scope in parts)))
    return WithScore(guard, inputs.score) if inputs.score is not None else guard


MIN_SNAPSHOT_ENV_STEPS = 256
"""On-policy snapshots are at least this many env steps apart by default, so that short
rollouts (A2C's 5 steps) do not make jumps constant: a window then spans at least
``context x 256`` env steps of training."""


def rollout_snapshot_every(env_steps: int, optimizer_steps: int,
                           min_env_steps: int = MIN_SNAPSHOT_ENV_STEPS) -> int:
    """``snapshot_every`` (in optimizer steps, manual mode) that puts a snapshot at the first
    rollout boundary at least ``min_env_steps`` env steps after the previous one, for rollouts
    of ``env_steps`` env steps followed by ``optimizer_steps`` optimizer steps. Rollouts of
    ``min_env_steps`` or more give 1: a snapshot at every boundary."""
    rollouts = max(1, math.ceil(min_env_steps / max(env_steps, 1)))
    # (k - 1) whole updates plus one step: robust to an update stopped early (PPO target_kl)
    return (rollouts - 1) * max(optimizer_steps, 1) + 1


KEEP_WINDOW_BY_DEFAULT: dict[str, str] = {
    "ppo": ("on InvertedPendulum-v5 (SB3, 256-step rollouts, 20 paired seeds) a jump every 2 "
            "snapshots from a kept window reached return 950 in 0.78x [0.63, 0.92] of the "
            "base's env steps, earlier on 15 seeds and later on 5, against 0.71x [0.59, 1.00] "
            "for a fresh window per jump"),
    "sac": ("on Pendulum-v1 (SB3, 20 paired seeds) it reached -200 in 3,400 env steps against "
            "the base's 5,000 (paired 0.88x [0.82, 1.00], earlier on 13 seeds, later on none) "
            "with a higher return over training on 18, where a fresh window per jump gave "
            "1.00x"),
}
"""Algorithms whose jumps by default keep the window (moved by each jump) and come every
:data:`DEFAULT_JUMP_EVERY` snapshots instead of after a whole fresh window, and the
measurement that decided it (docs/benchmarks.md). Other algorithms keep
:class:`~tipl_opt.jumps.JumpConfig`'s own defaults (a fresh window per jump)."""

DEFAULT_JUMP_EVERY = 2
"""New snapshots between jumps for the algorithms of :data:`KEEP_WINDOW_BY_DEFAULT`."""

ROLE_CHECK: dict[str, Any] = {"min_persistence": 0.1, "persistence_scope": "role",
                              "persistence_windows": 32, "persistence_mode": "once"}
"""The per-network persistence check of :data:`ROLE_CHECK_BY_DEFAULT`: over its first 32
windows (about 47 snapshots) each network's path is measured once, and a network whose
straight-line moves pointed nowhere (median cosine below 0.1) is left out of every later jump
(:class:`~tipl_opt.persistence.RolePersistence`)."""

ROLE_CHECK_BY_DEFAULT: dict[str, str] = {
    "ppo": ("on Pusher-v5 (SB3, 20 paired seeds), whose actor path has no direction, leaving "
            "the actor out raised the return over training by 1.05 [0.24, 1.81] against "
            "jumping both networks, higher on 17 seeds; on InvertedDoublePendulum-v5 and "
            "InvertedPendulum-v5 it left the env steps to the threshold unchanged on every "
            "seed"),
}
"""Algorithms that run the :data:`ROLE_CHECK` by default unless the jump config sets
``min_persistence`` itself (``min_persistence=null`` turns it off), and the measurement that
decided it (docs/benchmarks.md)."""

JUMPS_OFF_BY_DEFAULT: dict[str, str] = {
    "a2c": ("on CartPole-v1 (SB3, 256x256 networks, 15 paired seeds) they lowered the mean "
            "return over training from 140 to 80 and left 4 runs collapsed at the end against "
            "the base's 1, even with the return watchdog"),
    "td3": ("on Pendulum-v1 (SB3, 20-40 paired seeds) they never made it faster: jumping the "
            "critics too left 6 of 20 runs stuck at constant full torque against the base's 2, "
            "and with Gaussian action noise (0.1) jumping the actor alone left 3 stuck against "
            "1, its last evaluations 118 lower on average"),
}
"""Algorithms whose jumps are off unless the jump config sets ``enabled`` itself, and the
measurement that decided it (see docs/benchmarks.md): snapshots are still taken."""


CRITIC_JUMPS_OFF_BY_DEFAULT: dict[str, str] = {
    "td3": ("on Pendulum-v1 (SB3, no action noise, 20 paired seeds) jumping the critics left 6 "
            "runs at constant full torque to the end against the base's 2; jumping the actor "
            "alone left 2, as the base"),
}
"""Off-policy algorithms whose critics are not jumped unless ``targets`` says so, and the
measurement that decided it (see docs/benchmarks.md). SAC's critics are: there the critic
jumps carry the speed-up."""


def targets_of(setup: TIPLSetup, algo: str) -> Targets:
    """The ``targets`` in effect for ``setup`` on ``algo``: its own, else ``actor`` for the
    algorithms of :data:`CRITIC_JUMPS_OFF_BY_DEFAULT` (TD3) and ``both`` for the others."""
    if setup.targets is not None:
        return setup.targets
    return "actor" if algo.lower() in CRITIC_JUMPS_OFF_BY_DEFAULT else "both"


def jump_config(library: str, algo: str, *, on_policy: bool,
                config: JumpConfig | Mapping[str, Any] | None = None,
                auto_defaults: Mapping[str, Any] | None = None,
                rollout: tuple[int, int] | None = None) -> JumpConfig:
    """The jump config of ``algo``: its defaults updated with the fields ``config`` sets.

    Defaults: jumps off for the algorithms of :data:`JUMPS_OFF_BY_DEFAULT` (A2C, TD3) unless
    ``config`` sets ``enabled``; for those of :data:`KEEP_WINDOW_BY_DEFAULT` (PPO, SAC) a kept
    window and a jump every :data:`DEFAULT_JUMP_EVERY` snapshots, unless ``config`` sets
    ``keep_window`` or ``jump_every`` (``keep_window=false`` alone: a fresh window per jump,
    as before); for those of :data:`ROLE_CHECK_BY_DEFAULT` (PPO) the :data:`ROLE_CHECK`,
    unless ``config`` sets ``min_persistence`` (its other persistence fields then keep
    :class:`~tipl_opt.jumps.ScheduleConfig`'s defaults unless set too); on-policy
    ``mode="manual"`` with a snapshot at every rollout boundary, or, for
    ``rollout=(env steps, optimizer steps)`` per rollout shorter than
    :data:`MIN_SNAPSHOT_ENV_STEPS`, at the first boundary that many env steps on
    (:func:`rollout_snapshot_every`); off-policy ``mode="auto"`` plus the adapter's
    ``auto_defaults`` (cadence in gradient steps). On-policy algorithms refuse
    ``mode="auto"``: a jump inside an update would break the rollout's log-probabilities and
    values. Raises ConfigError.
    """
    every = rollout_snapshot_every(*rollout) if rollout is not None else 1
    fields: dict[str, Any] = ({"mode": "manual", "snapshot_every": every} if on_policy
                              else {"mode": "auto", **(auto_defaults or {})})
    asked = explicit_fields(config)
    if algo.lower() in KEEP_WINDOW_BY_DEFAULT:
        fields.setdefault("keep_window", True)
        if "jump_every" not in asked and asked.get("keep_window") is not False:
            fields["jump_every"] = DEFAULT_JUMP_EVERY
    if algo.lower() in ROLE_CHECK_BY_DEFAULT and "min_persistence" not in asked:
        fields.update(ROLE_CHECK)
    reason = JUMPS_OFF_BY_DEFAULT.get(algo.lower())
    if reason is not None and "enabled" not in asked:
        fields["enabled"] = False
        logger.warning("TIPL: jumps are off by default for %s %s: %s. Snapshots are still "
                       "taken; set enabled=true in the jump config (--jump enabled=true) to "
                       "jump anyway.", library, algo.upper(), reason)
    fields.update(asked)
    try:
        merged = JumpConfig.model_validate(fields)
    except ValidationError as exc:
        raise ConfigError(f"Invalid TIPL jump config {fields}: {exc}") from exc
    if on_policy and merged.schedule.mode != "manual":
        raise ConfigError(f"{library} {algo.upper()} can only jump at rollout boundaries: use "
                          "mode='manual' (the default) or leave mode out.")
    return merged


def jump_roles(config: JumpConfig, targets: str, *, on_policy: bool) -> JumpConfig:
    """``config`` with ``acceptance.roles`` set from ``targets`` for an on-policy algorithm
    (its one optimizer trains actor and critic: ``actor`` jumps only the actor's parameters,
    ``critic`` only the critic's), unless ``config`` sets ``roles`` itself. Off-policy
    algorithms choose by optimizer instead (:func:`select_parts`): ``config`` unchanged."""
    if not on_policy or targets == "both" or config.acceptance.roles is not None:
        return config
    acceptance = config.acceptance.model_copy(update={"roles": (targets,)})
    return config.model_copy(update={"acceptance": acceptance})


def adapter_defaults(algo: str) -> dict[str, Any]:
    """Every default of this module that shapes a TIPL run of ``algo`` unless the run's setup
    overrides it (JSON types): whether it jumps, whether it keeps its window and how often it
    jumps, the per-network check (PPO), the trust regions, the snapshot cadence of short
    rollouts. Part of a kept run's fingerprint (:func:`tipl_opt.run_cache.fingerprint`), so a
    run kept from before one of its algorithm's defaults changed is trained again, and runs of
    other algorithms are not. (:data:`ENTROPY_LIMIT` and the default ``targets``
    (:func:`targets_of`) are digested as the setup's values in effect instead, so that a run
    given one explicitly and one taking it by default share their fingerprint.)"""
    name = algo.lower()
    found: dict[str, Any] = {
        "jumps_off": name in JUMPS_OFF_BY_DEFAULT,
        "keep_window": name in KEEP_WINDOW_BY_DEFAULT, "jump_every": DEFAULT_JUMP_EVERY,
        "guards": {kind: [cls.__name__, limit] for kind, (cls, limit) in GUARDS.items()},
        "value_limit": VALUE_LIMIT, "min_snapshot_env_steps": MIN_SNAPSHOT_ENV_STEPS}
    if name in ROLE_CHECK_BY_DEFAULT:  # only there, so other algorithms' runs keep theirs
        found["role_check"] = ROLE_CHECK
    return found


def select_parts(library: str, algo: str, parts: Mapping[str, str],
                 targets: str) -> list[str]:
    """The parts (name -> :data:`PartKind`) that get TIPL for ``targets`` (as
    :func:`targets_of` resolves it): ``both`` all, ``actor`` the actor parts, ``critic`` the
    critic parts. A single ``policy`` part (PPO, A2C: one optimizer over actor and critic)
    gets TIPL for any ``targets``; its jumps then move only that role's parameters
    (:func:`jump_roles`). Another algorithm with a single optimizer (DQN) takes only ``both``.
    Raises ConfigError."""
    if targets not in ("actor", "critic", "both"):
        raise ConfigError(f"targets must be 'actor', 'critic' or 'both', got {targets!r}")
    if targets == "both" or list(parts.values()) == ["policy"]:
        return list(parts)
    chosen = [part for part, kind in parts.items() if kind == targets]
    if len(parts) == 1 or not chosen:
        raise ConfigError(f"{library} {algo.upper()} has a single optimizer: targets must be "
                          f"'both', got {targets!r}.")
    return chosen


def solved_level(watch: WatchConfig, env_id: str | None) -> float | None:
    """The return at which the watchdog holds jumps as solved: ``watch.solved_return``, or for
    ``"auto"`` the threshold of ``env_id`` (``None`` without an env or a known threshold)."""
    if watch.solved_return != "auto":
        return watch.solved_return
    known = threshold_for(env_id) if env_id else None
    return known[0] if known is not None else None


def _limits(guard: JumpGuard) -> dict[str, float]:
    """Every trust region of ``guard`` by name (an :class:`~tipl_opt.guard.AllOfGuard`'s
    parts, inside a :class:`~tipl_opt.guard.WithScore` too)."""
    inner = getattr(guard, "guard", guard)
    return {g.name: g.limit for g in getattr(inner, "guards", (inner,))}


class Attachment:
    """TIPL on one agent: a TIPLOptimizer per optimizer part, their guards and their summary.

    * ``library``/``algo``/``on_policy``: for the defaults and the messages;
    * ``setup``: predictor, jump fields, guard on/off and limit (a
      :class:`~tipl_opt.adapters.TIPLSetup`); ``predictor`` overrides ``setup.predictor`` with
      an object;
    * ``auto_defaults``: the adapter's off-policy jump defaults, ``rollout``: an on-policy
      agent's (env steps, optimizer steps) per rollout (:func:`jump_config`);
    * ``env_id``: the env trained on, for the watchdog's solved level (``solved_return="auto"``
      takes its threshold, :func:`tipl_opt.thresholds.threshold_for`).

    The predictor is resolved once and shared by every part.
    """

    def __init__(self, library: str, algo: str, *, on_policy: bool, setup: TIPLSetup,
                 predictor: Predictor | str | None = None,
                 config: JumpConfig | Mapping[str, Any] | None = None,
                 auto_defaults: Mapping[str, Any] | None = None,
                 rollout: tuple[int, int] | None = None, env_id: str | None = None) -> None:
        self.library, self.algo, self.on_policy, self.setup = library, algo, on_policy, setup
        self.config = jump_config(library, algo, on_policy=on_policy,
                                  config=config if config is not None else setup.jump,
                                  auto_defaults=auto_defaults, rollout=rollout)
        self.config = jump_roles(self.config, targets_of(setup, algo), on_policy=on_policy)
        spec = predictor if predictor is not None else setup.predictor
        self.predictor: Predictor = resolve_predictor(spec, self.config.prediction.context)
        self.optimizers: dict[str, TIPLOptimizer] = {}
        self.kinds: dict[str, str] = {}
        self.guards: dict[str, JumpGuard] = {}
        self.watchdog = (ReturnWatchdog(self.config.watch, self.optimizers,
                                        solved_level(self.config.watch, env_id))
                         if self.config.watch.watchdog else None)

    def limit(self, kind: str) -> float:
        """The trust region of a part of ``kind``: the setup's, else :data:`GUARDS`'."""
        return GUARDS[kind][1] if self.setup.guard_limit is None else float(self.setup.guard_limit)

    def wrap(self, part: str, kind: str, base: torch.optim.Optimizer,
             specs: Sequence[ParamSpec] | None) -> TIPLOptimizer:
        """A TIPLOptimizer around ``base`` (the library's own optimizer, kept as the base),
        recorded as ``part``."""
        owned = [p for group in base.param_groups for p in group["params"]]
        optimizer = TIPLOptimizer(owned, self.predictor, base=base, config=self.config,
                                  specs=specs)
        return self.adopt(part, kind, optimizer)

    def adopt(self, part: str, kind: str, optimizer: TIPLOptimizer) -> TIPLOptimizer:
        """Record a TIPLOptimizer built elsewhere (by the library, through a factory) as
        ``part`` of ``kind``."""
        if kind not in GUARDS:
            raise ConfigError(f"unknown part kind {kind!r}; one of {sorted(GUARDS)}")
        self.optimizers[part], self.kinds[part] = optimizer, kind
        watchdog = self.watchdog
        if watchdog is not None:
            optimizer.gate = watchdog.allow
            optimizer.register_jump_hook(lambda _opt, report: watchdog.jumped(part, report))
        return optimizer

    def record_returns(self, returns: Iterable[float]) -> None:
        """Returns of training episodes that just finished, in order, for the watchdog."""
        if self.watchdog is not None:
            for ret in returns:
                self.watchdog.episode(ret)

    def set_guard(self, part: str, inputs: GuardInputs) -> JumpGuard | None:
        """Give ``part`` the guard of its kind, measuring on ``inputs`` (nothing when the setup
        has guards off)."""
        if not self.setup.guard:
            return None
        value_limit = VALUE_LIMIT if self.setup.value_limit is None else self.setup.value_limit
        guard = make_guard(self.kinds[part], inputs, self.limit(self.kinds[part]), value_limit,
                           entropy_limit_of(self.setup), self.setup.value_fit_limit,
                           value_grad_limit_of(self.setup, self.algo))
        self.optimizers[part].guard = guard
        self.guards[part] = guard
        return guard

    @property
    def manual(self) -> list[TIPLOptimizer]:
        """The optimizers that jump only at safe points (``mode="manual"``)."""
        return [opt for opt in self.optimizers.values() if opt.config.schedule.mode == "manual"]

    def at_safe_point(self, skip: Callable[[TIPLOptimizer], bool] | None = None) -> None:
        """Call where no update is half done (on-policy: between an update and the next
        collect; off-policy: between two updates): the watchdog gives its verdict on the last
        jump if its episodes are in, then each manual-mode optimizer snapshots if due and jumps
        when its window is full, unless ``skip(optimizer)`` says not now."""
        if self.watchdog is not None:
            self.watchdog.tick()
            self.watchdog.check()
        for opt in self.manual:
            if skip is None or not skip(opt):
                opt.maybe_jump()

    def counters(self) -> dict[str, dict[str, int]]:
        """Snapshot and jump counters of each part's optimizer."""
        return {part: dict(opt.counters) for part, opt in self.optimizers.items()}

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable: predictor, parts, jump config, guards and counters by part, the
        watchdog's verdicts and the return level it holds jumps at as solved."""
        return {
            "predictor": str(getattr(self.predictor, "name", type(self.predictor).__name__)),
            "parts": list(self.optimizers),
            "jump": self.config.flat(),
            "guard": ({part: {"kind": g.name, "limit": g.limit, "limits": _limits(g)}
                       for part, g in self.guards.items()} if self.guards else None),
            "counters": self.counters(),
            "watchdog": self.watchdog.summary() if self.watchdog is not None else None,
            "solved_return": self.watchdog.solved if self.watchdog is not None else None,
        }

    def __repr__(self) -> str:
        return (f"Attachment({self.library} {self.algo.upper()}: "
                + ", ".join(f"{part}: {opt!r}" for part, opt in self.optimizers.items()) + ")")
