"""Hyperparameters of the Tianshou algorithms: defaults, accepted keys, validation, step budget.

The defaults follow Tianshou's own example scripts for CartPole and Pendulum, adapted to a single
training env. ``TrainSpec.hyperparams`` overrides them key by key; any other key is an error.
Nothing here imports Tianshou.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tipl_opt.errors import ConfigError


@dataclass(frozen=True)
class Param:
    """One accepted hyperparameter: its default, its type and the smallest value allowed."""

    default: Any
    kind: type
    """``int``, ``float`` or ``bool`` (an int is accepted where a float is expected)."""
    minimum: float | None = None
    """Inclusive lower bound, ``None`` for none."""
    optional: bool = False
    """``None`` is a valid value (it means "absent": derived, or the feature switched off)."""
    doc: str = ""


_COMMON: dict[str, Param] = {
    "gamma": Param(0.99, float, 0.0, doc="discount factor"),
    "batch_size": Param(64, int, 1, doc="minibatch size of one gradient step"),
    "collection_step_num_env_steps": Param(
        2048, int, 1, doc="env steps collected before each update (capped at the budget)"),
    "epoch_num_steps": Param(
        None, int, 1, optional=True,
        doc="env steps per trainer epoch; None: the whole run is one epoch"),
}

_OFF_POLICY: dict[str, Param] = {
    "buffer_size": Param(20_000, int, 1, doc="replay buffer capacity"),
    "update_step_num_gradient_steps_per_sample": Param(
        1.0, float, 0.0, doc="gradient steps per collected env step"),
    "warmup_steps": Param(
        None, int, 0, optional=True,
        doc="random-action env steps collected before training (counted in the budget); "
            "None: batch_size"),
}

PPO_PARAMS: dict[str, Param] = {
    **_COMMON,
    "lr": Param(3e-4, float, 0.0, doc="Adam learning rate of the actor-critic optimizer"),
    "update_step_num_repetitions": Param(10, int, 1, doc="passes over each rollout"),
    "gae_lambda": Param(0.95, float, 0.0),
    "eps_clip": Param(0.2, float, 0.0),
    "dual_clip": Param(None, float, 1.0, optional=True),
    "value_clip": Param(False, bool),
    "vf_coef": Param(0.5, float, 0.0),
    "ent_coef": Param(0.0, float, 0.0),
    "max_grad_norm": Param(0.5, float, 0.0, optional=True),
    "advantage_normalization": Param(True, bool),
    "recompute_advantage": Param(False, bool),
    "return_scaling": Param(False, bool),
    "orthogonal_init": Param(True, bool, doc="orthogonal weights, zero biases (Tianshou's "
                                             "PPO examples)"),
}

DQN_PARAMS: dict[str, Param] = {
    **_COMMON,
    **_OFF_POLICY,
    "lr": Param(1e-3, float, 0.0, doc="Adam learning rate of the Q-network optimizer"),
    "collection_step_num_env_steps": Param(10, int, 1, doc="env steps collected per update"),
    "update_step_num_gradient_steps_per_sample": Param(
        0.1, float, 0.0, doc="gradient steps per collected env step"),
    "n_step_return_horizon": Param(3, int, 1),
    "target_update_freq": Param(320, int, 0, doc="gradient steps between target-net copies"),
    "is_double": Param(True, bool),
    "huber_loss_delta": Param(None, float, 0.0, optional=True),
    "eps_train": Param(0.1, float, 0.0, doc="epsilon-greedy exploration at the start"),
    "eps_train_final": Param(None, float, 0.0, optional=True,
                             doc="epsilon after the decay; None: eps_train (constant)"),
    "eps_decay_steps": Param(None, int, 1, optional=True,
                             doc="env steps of linear epsilon decay; None: half the budget"),
}

SAC_PARAMS: dict[str, Param] = {
    **_COMMON,
    **_OFF_POLICY,
    "lr": Param(1e-3, float, 0.0, doc="Adam learning rate of actor and critics"),
    "actor_lr": Param(None, float, 0.0, optional=True, doc="None: lr"),
    "critic_lr": Param(None, float, 0.0, optional=True, doc="None: lr"),
    "batch_size": Param(128, int, 1, doc="minibatch size of one gradient step"),
    "collection_step_num_env_steps": Param(10, int, 1, doc="env steps collected per update"),
    "tau": Param(0.005, float, 0.0, doc="Polyak coefficient of the target critics"),
    "alpha": Param(0.2, float, 0.0, doc="entropy coefficient (initial value with auto_alpha)"),
    "auto_alpha": Param(False, bool, doc="tune alpha towards entropy -dim(A) (own Adam, "
                                         "never snapshotted)"),
    "alpha_lr": Param(3e-4, float, 0.0),
    "n_step_return_horizon": Param(1, int, 1),
}

PARAMS: dict[str, dict[str, Param]] = {"ppo": PPO_PARAMS, "dqn": DQN_PARAMS, "sac": SAC_PARAMS}
ALGORITHMS: tuple[str, ...] = tuple(PARAMS)
ON_POLICY: frozenset[str] = frozenset({"ppo"})

# Names used by other libraries, pointing at the key this adapter uses.
_ALIASES: dict[str, str] = {
    "learning_rate": "lr",
    "n_steps": "collection_step_num_env_steps",
    "step_per_collect": "collection_step_num_env_steps",
    "n_epochs": "update_step_num_repetitions",
    "repeat_per_collect": "update_step_num_repetitions",
    "clip_range": "eps_clip",
    "train_freq": "collection_step_num_env_steps",
    "gradient_steps": "update_step_num_gradient_steps_per_sample",
    "update_per_step": "update_step_num_gradient_steps_per_sample",
    "learning_starts": "warmup_steps",
    "exploration_fraction": "eps_decay_steps",
    "exploration_final_eps": "eps_train_final",
    "estimation_step": "n_step_return_horizon",
    "step_per_epoch": "epoch_num_steps",
}


def check_algorithm(algo: str) -> None:
    """Raise :class:`ConfigError` unless ``algo`` is one of :data:`ALGORITHMS`."""
    if algo not in PARAMS:
        close = difflib.get_close_matches(algo, ALGORITHMS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"The 'tianshou' adapter cannot train '{algo}'{hint}. "
                          f"Supported algorithms: {', '.join(ALGORITHMS)}.")


def _check_value(algo: str, key: str, param: Param, value: Any) -> Any:
    if value is None:
        if param.optional:
            return None
        raise ConfigError(f"Hyperparameter '{key}' of {algo.upper()} cannot be null.")
    if param.kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"Hyperparameter '{key}' of {algo.upper()} must be true or false, "
                              f"got {value!r}.")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"Hyperparameter '{key}' of {algo.upper()} must be a number, "
                          f"got {value!r}.")
    if param.kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"Hyperparameter '{key}' of {algo.upper()} must be an integer, "
                              f"got {value!r}.")
        value = int(value)
    else:
        value = float(value)
    if param.minimum is not None and value < param.minimum:
        raise ConfigError(f"Hyperparameter '{key}' of {algo.upper()} must be >= "
                          f"{param.minimum:g}, got {value!r}.")
    return value


def resolve(algo: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return every hyperparameter of ``algo``: the defaults with ``overrides`` applied.

    Raises :class:`ConfigError` naming an unknown key (with the closest accepted ones) or a value
    of the wrong type or range. Derived values (``None`` defaults) stay ``None`` here.
    """
    check_algorithm(algo)
    params = PARAMS[algo]
    unknown = [k for k in overrides if k not in params]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, params, n=3)
        if key in _ALIASES and _ALIASES[key] in params and _ALIASES[key] not in close:
            close.insert(0, _ALIASES[key])
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(f"Unknown hyperparameter '{key}' for tianshou {algo.upper()}.{hint} "
                          f"Accepted keys: {', '.join(sorted(params))}.")
    settings = {key: param.default for key, param in params.items()}
    for key, value in overrides.items():
        settings[key] = _check_value(algo, key, params[key], value)
    return settings


@dataclass(frozen=True)
class StepBudget:
    """How the trainer is driven so that its env steps land close to ``total_steps``.

    Tianshou runs ``max_epochs * ceil(epoch_num_steps / collect) * collect`` env steps; with one
    training env each collect step gathers exactly ``collect`` steps. Off-policy runs first
    collect ``warmup`` random steps outside the trainer (counted in the budget).
    """

    warmup: int
    collect: int
    epoch_num_steps: int
    max_epochs: int

    @property
    def planned_env_steps(self) -> int:
        return self.warmup + self.max_epochs * self.epoch_num_steps


def _round(x: float) -> int:
    return max(1, math.floor(x + 0.5))


def plan_budget(algo: str, settings: Mapping[str, Any], total_steps: int) -> StepBudget:
    """Choose collect size, epoch length and epoch count for ``total_steps`` env steps.

    The collect size is capped at the budget; the number of collect steps is rounded to the
    nearest whole number (at least one), so the run ends within half a collect step of
    ``total_steps`` (or within half an epoch when ``epoch_num_steps`` is given).
    """
    warmup = 0
    if algo not in ON_POLICY:
        wanted = settings["warmup_steps"]
        warmup = int(settings["batch_size"] if wanted is None else wanted)
        warmup = min(warmup, total_steps // 2)
    train_steps = total_steps - warmup
    collect = min(int(settings["collection_step_num_env_steps"]), train_steps)
    epoch_steps = settings["epoch_num_steps"]
    if epoch_steps is None:
        per_epoch = _round(train_steps / collect) * collect
        epochs = 1
    else:
        per_epoch = math.ceil(int(epoch_steps) / collect) * collect
        epochs = _round(train_steps / per_epoch)
    if algo not in ON_POLICY:
        ratio = float(settings["update_step_num_gradient_steps_per_sample"])
        if round(ratio * collect) < 1:
            raise ConfigError(
                f"update_step_num_gradient_steps_per_sample={ratio:g} with {collect} env steps "
                f"per collect gives no gradient step; raise one of them so that their product "
                f"is at least 1.")
    return StepBudget(warmup=warmup, collect=collect, epoch_num_steps=per_epoch,
                      max_epochs=epochs)
