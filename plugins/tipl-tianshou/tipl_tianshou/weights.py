"""Acting with a Tianshou policy outside training: evaluation episodes and loading given weights."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch

from tipl_opt.adapters.base import TrainSpec
from tipl_opt.adapters.evaluation import evaluate, load_params, make_env
from tipl_tianshou.algorithms import resolve
from tipl_tianshou.build import Agent, build_agent, optimized_parameters


@contextmanager
def inference_mode(agent: Agent) -> Iterator[None]:
    """Deterministic acting: torch eval mode, outside a training step, no autograd.

    Restores the policy's train/eval mode and its training-step flag afterwards (the trainer
    calls ``training_fn`` with the flag set, which would make PPO and SAC sample).
    """
    from tianshou.utils.torch_utils import policy_within_training_step, torch_train_mode

    with (torch.no_grad(), torch_train_mode(agent.policy, enabled=False),
          policy_within_training_step(agent.policy, enabled=False)):
        yield


def policy_act(agent: Agent) -> Callable[[Any], Any]:
    """``obs -> env action`` through the policy, mapped like Tianshou's collector does.

    ``Policy.compute_action`` runs the forward pass (the distribution's mode for PPO and SAC,
    the greedy action for DQN: no exploration noise) and ``map_action`` (for Box spaces:
    clip or tanh-bound to [-1, 1], then scale to the space's bounds). Call it inside
    :func:`inference_mode`.
    """
    policy = agent.policy

    def act(obs: Any) -> Any:
        return policy.compute_action(obs)

    return act


def load_parameters(agent: Agent, params: Mapping[str, torch.Tensor]) -> None:
    """Copy ``params`` (named as in the snapshots) into the agent's optimized tensors.

    Every snapshotted tensor must be given, with its shape; raises :class:`ConfigError` naming
    the first missing, unexpected or mis-shaped one. Target networks are left as built.
    """
    own = optimized_parameters(agent)
    load_params(own, params, f"tianshou {agent.algo.upper()}")


def evaluate_weights(spec: TrainSpec, params: Mapping[str, torch.Tensor],
                     episodes: int) -> tuple[float, float]:
    """Build the agent ``spec`` describes, load ``params``, return (mean, std) of the returns
    of ``episodes`` deterministic episodes seeded like :func:`tipl_opt.adapters.evaluate`.

    The global torch generator is left untouched. ``(nan, nan)`` when ``episodes == 0``.
    """
    settings = resolve(spec.algo, spec.hyperparams)
    env = make_env(spec.env_id)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            agent = build_agent(spec.algo, env, settings, spec.hidden_sizes, spec.activation)
        load_parameters(agent, params)
        with inference_mode(agent):
            mean, std, _ = evaluate(policy_act(agent), env, episodes, spec.seed)
    finally:
        env.close()
    return mean, std
