"""Load named weights (as recorded in snapshots) into a fresh SB3 agent and evaluate them."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tipl_opt.adapters.base import TrainSpec
from tipl_opt.adapters.evaluation import evaluate, load_params, make_env
from tipl_sb3.build import build_model
from tipl_sb3.params import tagged_parameters

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm


def load_parameters(model: BaseAlgorithm, algo: str, params: Mapping[str, torch.Tensor]) -> None:
    """Copy ``params`` into the parameters the optimizers own (names as in the snapshots, see
    :func:`tipl_sb3.params.tagged_parameters`). Every name must be given, with its shape;
    raises :class:`ConfigError` otherwise. Target networks are left as built."""
    tagged = tagged_parameters(model, algo)
    load_params(tagged, params, f"SB3 {algo.upper()}")


@contextmanager
def _global_rng_kept() -> Iterator[None]:
    """SB3 seeds Python's, NumPy's and torch's global generators when it builds an agent;
    restore them afterwards."""
    py_state, np_state = random.getstate(), np.random.get_state()
    torch_state = torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)


def evaluate_weights(spec: TrainSpec, params: Mapping[str, torch.Tensor],
                     episodes: int) -> tuple[float, float]:
    """Build the agent ``spec`` describes, load ``params`` and return the (mean, std) return of
    ``episodes`` deterministic episodes seeded like :func:`tipl_opt.adapters.evaluate`.

    The global random generators are left as they were. ``(nan, nan)`` when ``episodes == 0``.
    """
    eval_env = make_env(spec.env_id)
    with _global_rng_kept():
        model = build_model(spec)
    try:
        load_parameters(model, spec.algo, params)

        def act(obs: Any) -> Any:
            return model.predict(obs, deterministic=True)[0]

        mean, std, _ = evaluate(act, eval_env, episodes, spec.seed)
    finally:
        eval_env.close()
        env = model.get_env()
        if env is not None:
            env.close()
    return mean, std
