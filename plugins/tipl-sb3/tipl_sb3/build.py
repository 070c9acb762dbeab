"""Build an SB3 agent from a :class:`TrainSpec`, and describe the hyperparameters it uses."""

from __future__ import annotations

import copy
import enum
import inspect
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from tipl_opt.adapters.base import TrainSpec
from tipl_opt.adapters.evaluation import make_env
from tipl_opt.errors import ConfigError
from tipl_sb3.algorithms import POLICY, algorithm_class, algorithm_info

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}
"""``TrainSpec.activation`` -> torch activation class."""

NOT_REPORTED = frozenset({"policy", "env", "policy_kwargs", "verbose", "device",
                          "tensorboard_log", "stats_window_size", "_init_setup_model"})
"""Constructor arguments left out of the hyperparameter report (no effect on learning, or
reported separately)."""


def policy_kwargs(spec: TrainSpec) -> dict[str, Any]:
    """A fresh ``policy_kwargs`` dict: the network of ``spec`` (``net_arch`` from
    ``hidden_sizes``: ``dict(pi=..., vf=...)`` for PPO/A2C, a list for the others, and
    ``activation_fn``), updated with a copy of ``spec.hyperparams["policy_kwargs"]`` if given.

    Always a new dict: off-policy algorithms mutate the one they receive.
    """
    hidden = list(spec.hidden_sizes)
    net_arch: Any = (dict(pi=hidden, vf=list(hidden)) if algorithm_info(spec.algo).on_policy
                     else hidden)
    kwargs: dict[str, Any] = {"net_arch": net_arch,
                              "activation_fn": ACTIVATIONS[spec.activation]}
    kwargs.update(copy.deepcopy(dict(spec.hyperparams.get("policy_kwargs") or {})))
    return kwargs


NOISE_KINDS = {"normal": "NormalActionNoise", "ou": "OrnsteinUhlenbeckActionNoise"}
"""``action_noise`` spec prefixes -> the SB3 noise classes they build."""


def action_noise(value: Any, action_space: Any) -> Any:
    """The ``action_noise`` an off-policy SB3 algorithm gets from a hyperparams value:
    ``"normal:0.1"`` -> ``NormalActionNoise`` with that std in action units on every action
    dimension (``"ou:0.1"``: Ornstein-Uhlenbeck, the same sigma), as the RL Baselines3 Zoo's
    ``noise_type``/``noise_std`` build it; ``None`` or an SB3 ``ActionNoise`` object as given.

    Raises :class:`ConfigError` for another string, a sigma that is not a positive number, or
    an env whose actions are not continuous.
    """
    if not isinstance(value, str):
        return value
    kind, sep, sigma_text = value.partition(":")
    example = "'normal:0.1' or 'ou:0.1'"
    if kind not in NOISE_KINDS or not sep:
        raise ConfigError(f"hyperparams 'action_noise' must look like {example}, got {value!r}.")
    try:
        sigma = float(sigma_text)
    except ValueError:
        sigma = float("nan")
    if not np.isfinite(sigma) or sigma <= 0:
        raise ConfigError(f"hyperparams 'action_noise': the sigma of {value!r} must be a positive "
                          f"number, like {example}.")
    shape = getattr(action_space, "shape", None)
    if not shape or getattr(action_space, "dtype", np.dtype(int)).kind != "f":
        raise ConfigError(f"hyperparams 'action_noise' needs continuous actions; this env's are "
                          f"{action_space}.")
    from stable_baselines3.common import noise

    cls = getattr(noise, NOISE_KINDS[kind])
    size = int(np.prod(shape))
    return cls(mean=np.zeros(size), sigma=sigma * np.ones(size))


def constructor_kwargs(spec: TrainSpec) -> dict[str, Any]:
    """Keyword arguments for the SB3 algorithm besides policy and env: ``seed``,
    ``device="cpu"``, ``verbose=0`` (the last two can be overridden through hyperparams), the
    other hyperparams, and :func:`policy_kwargs`."""
    extra = {k: copy.deepcopy(v) for k, v in spec.hyperparams.items() if k != "policy_kwargs"}
    return {"device": "cpu", "verbose": 0, **extra, "seed": spec.seed,
            "policy_kwargs": policy_kwargs(spec)}


def build_model(spec: TrainSpec) -> BaseAlgorithm:
    """Build the SB3 algorithm of ``spec`` with the library's own defaults on one training env
    (SB3 wraps it in a ``Monitor`` and a ``DummyVecEnv`` and seeds it with ``spec.seed``);
    an ``action_noise`` spec string becomes its SB3 noise (:func:`action_noise`).

    Raises :class:`ConfigError` when SB3 rejects a hyperparameter value.
    """
    cls = algorithm_class(spec.algo)
    env = make_env(spec.env_id)
    try:
        kwargs = constructor_kwargs(spec)
        if "action_noise" in kwargs:
            kwargs["action_noise"] = action_noise(kwargs["action_noise"], env.action_space)
        return cls(POLICY, env, **kwargs)
    except ConfigError:
        env.close()
        raise
    except (TypeError, ValueError, AssertionError) as exc:
        env.close()
        raise ConfigError(f"SB3 {cls.__name__} rejected the hyperparameters "
                          f"{dict(spec.hyperparams)}: {exc}") from exc


def to_json(value: Any) -> Any:
    """A JSON-serialisable form of a hyperparameter value: enums by value, classes by name,
    SB3 constant schedules by their value, other schedules and objects by ``repr``."""
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, type):
        return value.__name__
    inner = getattr(value, "value_schedule", None)  # SB3 FloatSchedule
    if inner is not None:
        return to_json(inner)
    constant = getattr(value, "val", None)  # SB3 ConstantSchedule
    if callable(value) and isinstance(constant, int | float):
        return constant
    return repr(value)


def _activation_name(activation_fn: Any) -> str:
    for name, cls in ACTIVATIONS.items():
        if activation_fn is cls:
            return name
    return str(to_json(activation_fn))


def describe(model: BaseAlgorithm, used_policy_kwargs: dict[str, Any],
             optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Any]:
    """The hyperparameters ``model`` trains with, JSON-serialisable.

    Every constructor argument of the algorithm that affects learning, read back from the
    built model (so SB3's own defaults and conversions show), plus ``policy``, ``net_arch``,
    ``activation``, the remaining ``policy_kwargs``, ``optimizer`` (class name of each
    optimizer, by part) and ``optimizer_kwargs``.
    """
    out: dict[str, Any] = {"policy": POLICY}
    for name in inspect.signature(type(model).__init__).parameters:
        if name == "self" or name in NOT_REPORTED or not hasattr(model, name):
            continue
        out[name] = to_json(getattr(model, name))
    other = {k: v for k, v in used_policy_kwargs.items() if k not in ("net_arch", "activation_fn")}
    out["net_arch"] = to_json(used_policy_kwargs["net_arch"])
    out["activation"] = _activation_name(used_policy_kwargs["activation_fn"])
    if other:
        out["policy_kwargs"] = to_json(other)
    out["optimizer"] = {part: type(opt).__name__ for part, opt in optimizers.items()}
    ent_coef_optimizer = getattr(model, "ent_coef_optimizer", None)
    if ent_coef_optimizer is not None:
        out["optimizer"]["ent_coef"] = type(ent_coef_optimizer).__name__
    out["optimizer_kwargs"] = to_json(getattr(model.policy, "optimizer_kwargs", {}) or {})
    return out
