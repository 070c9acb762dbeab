"""The configuration of a collection: a TOML file validated by pydantic, flags on top."""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tipl_opt.adapters.base import Activation, TrainSpec
from tipl_opt.collect.executor import ExecutorKind
from tipl_opt.errors import ConfigError


class CollectConfig(BaseModel):
    """What ``tipl collect`` runs. Every field can come from ``--config FILE`` or a flag."""

    model_config = ConfigDict(extra="forbid")

    lib: str = "sb3"
    """Adapter plugin that trains (``sb3``, ``tianshou``, or a third-party one)."""
    algo: str = "ppo"
    env: str = "CartPole-v1"
    runs: int = Field(default=4, ge=1)
    """Independent runs; run i uses seed ``seed + i``."""
    steps: int = Field(default=50_000, gt=0)
    """Training env steps per run."""
    every: int = Field(default=1_000, gt=0)
    """Env steps between snapshots (on-policy: the next rollout boundary)."""
    seed: int = 0
    workers: int = Field(default=1, ge=1)
    executor: ExecutorKind = "process"
    """Where runs train: ``process`` (this machine) or ``ray`` (Ray tasks)."""
    address: str | None = None
    """Ray cluster to join (``auto``, ``host:6379``); ``None``: a local Ray with ``workers``
    CPUs."""
    out: Path = Path("data")
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: Activation = "tanh"
    eval_episodes: int = Field(default=5, ge=0)
    dtype: Literal["float32", "float16"] = "float32"
    """Storage dtype of the weights in the learning-path files."""
    hyperparams: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword arguments for the library's algorithm."""

    def train_spec(self, run_index: int) -> TrainSpec:
        return TrainSpec(
            algo=self.algo.lower(), env_id=self.env, seed=self.seed + run_index,
            total_steps=self.steps, every=self.every, hidden_sizes=self.hidden_sizes,
            activation=self.activation, eval_episodes=self.eval_episodes,
            hyperparams=self.hyperparams,
        )


def _explain(exc: ValidationError, source: str) -> ConfigError:
    lines = []
    known = list(CollectConfig.model_fields)
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(err["loc"][-1]), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            lines.append(f"unknown key '{loc}'{hint}")
        else:
            lines.append(f"'{loc}': {err['msg']}")
    return ConfigError(f"Invalid collect configuration in {source}: " + "; ".join(lines)
                       + f". Valid keys: {', '.join(known)}.")


def load_config(file: Path | None, overrides: dict[str, Any]) -> CollectConfig:
    """Read ``file`` (TOML, optional), apply ``overrides`` (flags; ``None`` = not given), validate.

    ``hyperparams`` from flags are added to the file's, key by key (a flag wins on the same key).

    A TOML file may put everything at the top level or under a ``[collect]`` table.
    """
    data: dict[str, Any] = {}
    source = "flags"
    if file is not None:
        source = str(file)
        try:
            data = tomllib.loads(Path(file).read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"Config file not found: {file}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"Config file {file} is not valid TOML: {exc}") from exc
        if isinstance(data.get("collect"), dict):
            data = {**{k: v for k, v in data.items() if k != "collect"}, **data["collect"]}
    given = {k: v for k, v in overrides.items() if v is not None}
    if isinstance(given.get("hyperparams"), dict) and isinstance(data.get("hyperparams"), dict):
        given["hyperparams"] = {**data["hyperparams"], **given["hyperparams"]}
    data.update(given)
    try:
        return CollectConfig.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, source) from exc
