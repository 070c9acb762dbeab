"""Zero-shot inference: from a saved learning path, predict weights further along it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from tipl_opt import atomic
from tipl_opt.adapters.base import TrainSpec
from tipl_opt.errors import TiplError
from tipl_opt.paths.reader import LearningPath
from tipl_opt.paths.spec import ParamSpec, unflatten
from tipl_opt.predictors.base import Predictor, history_length

WEIGHTS_FORMAT = "tipl-weights"


def train_spec(run: LearningPath) -> TrainSpec:
    """The spec of a fresh agent for ``run``'s weights, read from its metadata (to evaluate
    other weights of the same shapes: ``tipl infer --eval``, ``tipl jumps``)."""
    network = run.meta.get("network", {})
    return TrainSpec(algo=run.algorithm, env_id=run.env_id, seed=run.seed or 0,
                     total_steps=int(run.meta.get("total_steps", 1)),
                     every=int(run.meta.get("cadence", {}).get("every", 1)),
                     hidden_sizes=tuple(network.get("hidden_sizes", (64, 64))),
                     activation=network.get("activation", "tanh"))


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
    last checkpoint at or before it; ``None``: the run's last checkpoint; a predictor that
    declares a ``max_context`` gets up to that many, as in training), ``horizon`` snapshot
    intervals ahead, ``rollout`` times autoregressively. Non-finite predictions are an error."""
    env_steps = path.env_steps
    if from_step is None:
        index = path.num_snapshots - 1
    elif from_step > int(env_steps[-1]):
        raise TiplError(f"{path.name} ends at env step {int(env_steps[-1]):,}; --from-step "
                        f"{from_step:,} is beyond its end: pass at most {int(env_steps[-1])}, "
                        "or leave --from-step out to predict from the end")
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
    n = min(index + 1, history_length(predictor))  # a longer history where it can use one
    window = path.window(index - n + 1, n)
    finite = torch.isfinite(window[-k:]).all(dim=1)
    if not bool(finite.all()):
        bad = index - k + 1 + int(torch.nonzero(~finite)[0])
        raise TiplError(f"{path.path}: snapshot {bad} (env step {int(env_steps[bad]):,}) holds "
                        "non-finite weights (NaN or inf), so nothing can be predicted from it; "
                        "choose a --from-step before it, or re-collect this run")
    steps = torch.from_numpy(env_steps[index - n + 1 : index + 1].astype(np.float64))
    prediction = window[-1]
    for _ in range(rollout):
        prediction = predictor.predict(window, steps, path.specs, horizon)
        if not torch.all(torch.isfinite(prediction)):
            raise TiplError("the predictor returned non-finite weights; nothing was written")
        dt = float(steps[-1] - steps[0]) / max(n - 1, 1)
        window = torch.cat([window[1:], prediction[None]])
        steps = torch.cat([steps[1:], steps[-1:] + dt * horizon])
    return Inference(prediction, path.specs, path, index, horizon, rollout)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_out(out: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = (), *,
              force: bool = False) -> Path:
    """Raise :class:`TiplError` unless ``out`` can take the predicted weights: it must not be
    a folder or one of ``inputs`` (a file, or a folder whose files are inputs), and an existing
    file is replaced only with ``force``."""
    out = Path(out)
    if out.is_dir():
        raise TiplError(f"--out {out} is a folder; give a file name such as "
                        f"{out / 'weights.safetensors'}")
    for item in inputs:
        source = Path(item)
        candidates = list(source.iterdir()) if source.is_dir() else [source]
        if any(_same_file(out, c) for c in candidates):
            raise TiplError(f"--out {out} is an input of this command ({source}); writing there "
                            "would destroy it: choose another file name")
    if out.exists() and not force:
        raise TiplError(f"{out} already exists; pass --force to replace it, or choose another "
                        "--out")
    return out


def save_weights(out: str | os.PathLike[str], inference: Inference,
                 extra: dict[str, Any] | None = None, *, force: bool = True) -> Path:
    """Write the predicted weights as named tensors + the run's parameter spec (safetensors),
    atomically (:func:`tipl_opt.atomic.atomic_write`). Never over the source learning path;
    over another existing file only with ``force``."""
    out = check_out(out, [inference.source.path], force=force)
    tensors = {name: t.contiguous() for name, t in unflatten(inference.weights,
                                                              inference.specs).items()}
    src = inference.source
    meta = {"params": [s.to_json() for s in inference.specs], "source": str(src.path),
            "library": src.library, "algorithm": src.algorithm, "env_id": src.env_id,
            "from_env_steps": inference.from_env_steps, "horizon": inference.horizon,
            "rollout": inference.rollout, "network": src.meta.get("network", {}),
            "hyperparameters": src.meta.get("hyperparameters", {}), **(extra or {})}
    metadata = {"format": WEIGHTS_FORMAT, "tipl_weights": json.dumps(meta)}
    try:
        return atomic.atomic_write(out, lambda tmp: save_file(tensors, str(tmp),
                                                              metadata=metadata))
    except OSError as exc:
        raise TiplError(f"cannot write {out}: {exc.strerror or exc}; nothing was written") from exc


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
