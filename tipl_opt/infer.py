"""Zero-shot inference: from a saved learning path, predict weights further along it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from tipl_opt.errors import TiplError
from tipl_opt.paths.reader import LearningPath
from tipl_opt.paths.spec import ParamSpec, unflatten
from tipl_opt.predictors.base import Predictor

WEIGHTS_FORMAT = "tipl-weights"


@dataclass
class Inference:
    """Predicted weights for one run, with where they come from."""

    weights: torch.Tensor  # [P]
    specs: list[ParamSpec]
    source: LearningPath
    from_index: int  # checkpoint the window ends at
    horizon: int
    rollout: int

    @property
    def from_env_steps(self) -> int:
        return int(self.source.env_steps[self.from_index])

    @property
    def predicted_env_steps(self) -> int:
        """Env steps the prediction stands for (the run's mean snapshot interval x jumps)."""
        steps = self.source.env_steps
        k = min(self.from_index, 8)
        interval = (steps[self.from_index] - steps[self.from_index - k]) / max(k, 1)
        return int(steps[self.from_index] + interval * self.horizon * self.rollout)


def infer(predictor: Predictor, path: LearningPath, from_step: int | None = None, *,
          horizon: int | None = None, rollout: int = 1) -> Inference:
    """Predict from the ``predictor.context`` snapshots ending at env step ``from_step`` (the
    last checkpoint at or before it; ``None``: the run's last checkpoint), ``horizon`` snapshot
    intervals ahead, ``rollout`` times autoregressively. Non-finite predictions are an error."""
    env_steps = path.env_steps
    if from_step is None:
        index = path.num_snapshots - 1
    else:
        eligible = np.nonzero(env_steps <= from_step)[0]
        if len(eligible) == 0:
            raise TiplError(f"{path.name} has no checkpoint at or before env step {from_step}")
        index = int(eligible[-1])
    k = predictor.context
    if index + 1 < k:
        raise TiplError(f"the predictor needs {k} snapshots but {path.name} has only "
                        f"{index + 1} up to env step {int(env_steps[index])}; choose a later "
                        "--from-step")
    if rollout < 1:
        raise TiplError(f"--rollout must be >= 1, got {rollout}")
    if horizon is None:
        horizon = int(max(getattr(predictor, "horizons", (1,))))
    window = path.window(index - k + 1, k)
    steps = torch.from_numpy(env_steps[index - k + 1 : index + 1].astype(np.float64))
    prediction = window[-1]
    for _ in range(rollout):
        prediction = predictor.predict(window, steps, path.specs, horizon)
        if not torch.all(torch.isfinite(prediction)):
            raise TiplError("the predictor returned non-finite weights; nothing was written")
        dt = float(steps[-1] - steps[0]) / max(k - 1, 1)
        window = torch.cat([window[1:], prediction[None]])
        steps = torch.cat([steps[1:], steps[-1:] + dt * horizon])
    return Inference(prediction, path.specs, path, index, horizon, rollout)


def save_weights(out: str | os.PathLike[str], inference: Inference,
                 extra: dict[str, Any] | None = None) -> Path:
    """Write the predicted weights as named tensors + the run's parameter spec (safetensors)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.contiguous() for name, t in unflatten(inference.weights,
                                                              inference.specs).items()}
    src = inference.source
    meta = {"params": [s.to_json() for s in inference.specs], "source": str(src.path),
            "library": src.library, "algorithm": src.algorithm, "env_id": src.env_id,
            "from_env_steps": inference.from_env_steps, "horizon": inference.horizon,
            "rollout": inference.rollout, "network": src.meta.get("network", {}),
            "hyperparameters": src.meta.get("hyperparameters", {}), **(extra or {})}
    tmp = out.with_name(f".{out.name}.tmp")
    save_file(tensors, str(tmp), metadata={"format": WEIGHTS_FORMAT,
                                           "tipl_weights": json.dumps(meta)})
    os.replace(tmp, out)
    return out


def load_weights(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by :func:`save_weights`: named tensors and their metadata."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != WEIGHTS_FORMAT:
                raise TiplError(f"{path} is not a tipl weights file")
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (OSError, json.JSONDecodeError, Exception) as exc:
        if isinstance(exc, TiplError):
            raise
        raise TiplError(f"{path} cannot be read: {exc}") from exc
    info: dict[str, Any] = json.loads(meta["tipl_weights"])
    return tensors, info
