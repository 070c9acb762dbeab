"""Which optimizers an SB3 agent trains with, and the parameters they own, named and tagged.

A snapshot holds exactly the parameters the optimizers own, in param-group order, never
target networks (DQN's ``q_net_target``, SAC/TD3's ``critic_target``/``actor_target``) and
never SAC's entropy coefficient (``log_ent_coef``, a hard-coded Adam of its own).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from tipl_opt.errors import ConfigError
from tipl_opt.paths.spec import ParamSpec, TaggedParam
from tipl_sb3.algorithms import ALGORITHM_INFO, algorithm_info

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

ACTOR_PREFIXES = ("mlp_extractor.policy_net.", "action_net.", "pi_features_extractor.",
                  "log_std")
CRITIC_PREFIXES = ("mlp_extractor.value_net.", "value_net.", "vf_features_extractor.")


SAVED_OPTIMIZER = {"policy": "policy.optimizer", "actor": "actor.optimizer",
                   "critic": "critic.optimizer"}
"""Part -> the name SB3's ``save()`` stores that optimizer's ``state_dict()`` under."""


def algorithm_of(model: object) -> str:
    """The algorithm (``"ppo"``...) of an SB3 model: its class or the Stable-Baselines3 class it
    derives from (DDPG derives from TD3). Raises :class:`ConfigError` for another class."""
    by_class = {info.class_name: algo for algo, info in ALGORITHM_INFO.items()}
    for cls in type(model).__mro__:
        if cls.__module__.startswith("stable_baselines3.") and cls.__name__ in by_class:
            return by_class[cls.__name__]
    raise ConfigError(f"{type(model).__name__} is not one of the SB3 algorithms tipl-sb3 "
                      f"supports ({', '.join(by_class)}) nor derived from one.")


def owned_optimizers(model: BaseAlgorithm, algo: str) -> dict[str, torch.optim.Optimizer]:
    """The optimizers whose parameters are snapshotted, by part, in snapshot order.

    PPO/A2C: ``{"policy": policy.optimizer}`` (one optimizer over actor and critic); DQN:
    ``{"policy": policy.optimizer}`` (over ``q_net``); SAC/TD3: ``{"actor": actor.optimizer,
    "critic": critic.optimizer}``.
    """
    info = algorithm_info(algo)
    if info.on_policy or algo.lower() == "dqn":
        return {"policy": model.policy.optimizer}
    actor = model.actor  # type: ignore[attr-defined]
    critic = model.critic  # type: ignore[attr-defined]
    return {"actor": actor.optimizer, "critic": critic.optimizer}


def grad_step_part(algo: str) -> str:
    """The part of :func:`owned_optimizers` whose ``step()`` calls count as gradient steps.

    SAC/TD3 count the critic optimizer: it steps at every gradient step, while TD3's actor
    steps only every ``policy_delay`` gradient steps.
    """
    return "policy" if algorithm_info(algo).on_policy or algo.lower() == "dqn" else "critic"


def _role(algo: str, part: str, name: str) -> str:
    if algo == "dqn":
        return "q"
    if part in ("actor", "critic"):
        return part
    if name.startswith(ACTOR_PREFIXES):
        return "actor"
    if name.startswith(CRITIC_PREFIXES):
        return "critic"
    return "shared"


def tagged_parameters(model: BaseAlgorithm, algo: str) -> list[TaggedParam]:
    """The live parameters the optimizers own, in param-group order, named after
    ``model.policy.named_parameters()`` and tagged with their role.

    Names and roles: PPO/A2C ``mlp_extractor.policy_net.*``, ``action_net.*``, ``log_std``
    -> ``"actor"``; ``mlp_extractor.value_net.*``, ``value_net.*`` -> ``"critic"``; a features
    extractor shared by both -> ``"shared"``. DQN ``q_net.*`` -> ``"q"``. SAC/TD3 ``actor.*``
    -> ``"actor"`` then ``critic.*`` -> ``"critic"``. SB3 keeps the same parameter objects
    through ``learn()``, so the list can be built once per run.
    """
    algo = algo.lower()
    names = {id(p): n for n, p in model.policy.named_parameters()}
    seen: set[int] = set()
    params: list[TaggedParam] = []
    for part, optimizer in owned_optimizers(model, algo).items():
        for group in optimizer.param_groups:
            for tensor in group["params"]:
                if id(tensor) in seen:
                    continue
                name = names.get(id(tensor))
                if name is None:
                    raise RuntimeError(f"the {part} optimizer of SB3 {algo.upper()} owns a "
                                       "tensor that is not a parameter of the policy")
                seen.add(id(tensor))
                params.append(TaggedParam(name, _role(algo, part, name), tensor))
    return params


def optimizer_specs(model: BaseAlgorithm, algo: str) -> dict[str, list[ParamSpec]]:
    """For each part of :func:`owned_optimizers`, the specs (name, shape, role) of the
    parameters its optimizer owns, in its param-group order (as :func:`tagged_parameters`
    names and tags them)."""
    tagged = {id(p.tensor): p for p in tagged_parameters(model, algo)}
    return {part: [tagged[id(t)].spec for group in opt.param_groups for t in group["params"]]
            for part, opt in owned_optimizers(model, algo).items()}
