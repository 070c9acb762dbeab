"""The SB3 algorithms tipl-opt trains, and the checks of a run's settings that build no agent."""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from tipl_opt.errors import ConfigError

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

POLICY = "MlpPolicy"
"""The SB3 policy every run uses."""


@dataclass(frozen=True)
class AlgorithmInfo:
    """What tipl-opt needs to know about one SB3 algorithm."""

    class_name: str
    """Attribute of the ``stable_baselines3`` package (``"PPO"``)."""
    on_policy: bool
    """On-policy algorithms are snapshotted at rollout boundaries, off-policy ones at any step."""
    action_spaces: tuple[type[gym.Space[Any]], ...]
    """Action spaces the algorithm trains on."""


ALGORITHM_INFO: dict[str, AlgorithmInfo] = {
    "ppo": AlgorithmInfo("PPO", True, (gym.spaces.Discrete, gym.spaces.Box)),
    "a2c": AlgorithmInfo("A2C", True, (gym.spaces.Discrete, gym.spaces.Box)),
    "dqn": AlgorithmInfo("DQN", False, (gym.spaces.Discrete,)),
    "sac": AlgorithmInfo("SAC", False, (gym.spaces.Box,)),
    "td3": AlgorithmInfo("TD3", False, (gym.spaces.Box,)),
}

ALGORITHMS: tuple[str, ...] = tuple(ALGORITHM_INFO)

RESERVED_KWARGS: dict[str, str] = {
    "policy": f"every run uses '{POLICY}'",
    "env": "the env comes from the run's env id",
    "seed": "the seed comes from the run (--seed)",
    "_init_setup_model": "the model must be built",
}
"""Constructor arguments tipl-opt sets itself, with the reason a user cannot set them."""

RESERVED_POLICY_KWARGS = frozenset({"observation_space", "action_space", "lr_schedule"})
"""Policy constructor arguments the algorithm fills in."""


def algorithm_info(algo: str) -> AlgorithmInfo:
    """Describe ``algo`` (lower case) or raise :class:`ConfigError` naming the supported ones."""
    info = ALGORITHM_INFO.get(algo.lower())
    if info is None:
        raise ConfigError(f"The 'sb3' adapter cannot train '{algo}'. "
                          f"Supported: {', '.join(ALGORITHMS)}.")
    return info


def algorithm_class(algo: str) -> type[BaseAlgorithm]:
    """The SB3 class of ``algo`` (imports Stable-Baselines3)."""
    module = importlib.import_module("stable_baselines3")
    cls: type[BaseAlgorithm] = getattr(module, algorithm_info(algo).class_name)
    return cls


def _accepted(function: Any, exclude: Iterable[str]) -> list[str]:
    skip = {"self", *exclude}
    return [name for name, p in inspect.signature(function).parameters.items()
            if name not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _unknown_key_error(key: str, owner: str, accepted: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, accepted, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(f"'{key}' is not an argument of {owner}.{hint} "
                       f"Accepted: {', '.join(sorted(accepted))}.")


def check_hyperparams(algo: str, hyperparams: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` for a key of ``hyperparams`` the SB3 algorithm's constructor
    does not accept (with close matches), a key tipl-opt sets itself, or a ``policy_kwargs``
    that is not a dict or holds a key the policy does not accept. Values are not checked here;
    SB3 checks them when the agent is built. Imports Stable-Baselines3, builds nothing."""
    cls = algorithm_class(algo)
    accepted = _accepted(cls.__init__, ("policy", "env", "_init_setup_model"))
    for key in hyperparams:
        if key in RESERVED_KWARGS:
            raise ConfigError(f"'{key}' cannot be set in hyperparams: {RESERVED_KWARGS[key]}.")
        if key not in accepted:
            raise _unknown_key_error(key, f"SB3 {cls.__name__}", accepted)
    policy_kwargs = hyperparams.get("policy_kwargs")
    if policy_kwargs is None:
        return
    if not isinstance(policy_kwargs, Mapping):
        raise ConfigError(f"hyperparams 'policy_kwargs' must be a mapping, got "
                          f"{type(policy_kwargs).__name__}.")
    policy_class = cls.policy_aliases[POLICY]
    accepted_policy = _accepted(policy_class.__init__, RESERVED_POLICY_KWARGS)
    for key in policy_kwargs:
        if key not in accepted_policy:
            raise _unknown_key_error(key, f"SB3 {policy_class.__name__} (policy_kwargs)",
                                     accepted_policy)
