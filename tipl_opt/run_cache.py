"""Finished runs of ``tipl train`` and ``tipl bench`` kept on disk, so that an interrupted or
split comparison resumes where it stopped instead of training everything again.

Each finished run is one small JSON file, ``OUT/runs/<run>.json``, holding its learning curve,
jump counters and a fingerprint of what was trained (see :func:`fingerprint`). A file whose
fingerprint does not match the run asked for, or that cannot be read, is ignored (with a
warning) and the run is trained again; nothing is ever unpickled.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from pathlib import Path

import torch

from tipl_opt.collect.runner import RunResult, RunTask
from tipl_opt.curves import write_json

logger = logging.getLogger(__name__)

FORMAT = "tipl-run-result"
VERSION = 1


@functools.lru_cache(maxsize=32)
def _checkpoint_digest(predictor: str) -> str:
    """The predictor by content: a checkpoint folder (or ``default``) is hashed file by file, so
    retraining into the same folder changes the fingerprint; a registered name is itself."""
    from tipl_opt.predictors import default_predictor_path

    folder = default_predictor_path() if predictor == "default" else Path(predictor)
    if folder is None or not folder.is_dir():
        return predictor
    digest = hashlib.sha256()
    for file in sorted(folder.glob("*")):
        if file.is_file():
            digest.update(file.name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def _library_version(lib: str) -> str:
    from tipl_opt.plugins import get_adapter

    return str(get_adapter(lib).library_version())


def fingerprint(task: RunTask) -> str:
    """A digest of everything that determines the run's outcome: library, algorithm, env,
    seed, budget, hyperparameters, the TIPL setup with its jump settings normalised and its
    predictor by content, and the versions of tipl-opt, torch and the RL library."""
    from tipl_opt import __version__
    from tipl_opt.jumps import JumpConfig

    tipl = None
    if task.tipl is not None:
        tipl = task.tipl.model_dump(mode="json")
        tipl["jump"] = JumpConfig.model_validate(task.tipl.jump).model_dump(mode="json")
        tipl["predictor"] = _checkpoint_digest(task.tipl.predictor)
    what = {"lib": task.lib, "spec": task.spec.model_dump(mode="json"), "tipl": tipl,
            "tipl_opt": __version__, "torch": torch.__version__,
            "library": _library_version(task.lib)}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def cache_file(folder: Path, task: RunTask) -> Path:
    return folder / "runs" / f"{task.name}.json"


def load(folder: Path, task: RunTask) -> RunResult | None:
    """The cached result of ``task`` in ``folder``, or ``None`` (absent, stale or unreadable)."""
    file = cache_file(folder, task)
    if not file.exists():
        return None
    if task.write_path and not task.path.exists():
        logger.info("%s has no learning path at %s; training it again", task.name, task.path)
        return None
    try:
        doc = json.loads(file.read_text())
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get(
                "version") != VERSION:
            raise ValueError(f"not a version-{VERSION} {FORMAT} file")
        if doc["fingerprint"] != fingerprint(task):
            logger.warning("%s was trained with other settings (or another version of "
                           "tipl-opt, torch, the library or the predictor); training it again "
                           "replaces it", file)
            return None
        return RunResult(
            name=task.name, path=task.path, seed=task.spec.seed,
            snapshots=int(doc["snapshots"]),
            params=int(doc["params"]), first_return=float(doc["first_return"]),
            last_return=float(doc["last_return"]), wall_time_s=float(doc["wall_time_s"]),
            skipped=True,
            curve=[(int(s), float(m), float(sd)) for s, m, sd in doc["curve"]],  # "nan" too
            jumps={str(k): int(v) for k, v in doc["jumps"].items()},
            hyperparameters=dict(doc.get("hyperparameters", {})))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.warning("Ignoring unreadable run result %s (%s); training %s again", file, exc,
                       task.name)
        return None


def store(folder: Path, task: RunTask, result: RunResult) -> Path | None:
    """Write ``result`` atomically (temp file + rename): a crash never leaves half a file.
    A write error is logged, not raised: the run's result is still reported, only not kept."""
    doc = {"format": FORMAT, "version": VERSION, "fingerprint": fingerprint(task),
           "run": task.name, "lib": task.lib, "spec": task.spec.model_dump(mode="json"),
           "tipl": task.tipl.model_dump(mode="json") if task.tipl else None,
           "snapshots": result.snapshots, "params": result.params,
           "first_return": result.first_return, "last_return": result.last_return,
           "wall_time_s": result.wall_time_s, "curve": [list(c) for c in result.curve],
           "jumps": result.jumps, "hyperparameters": result.hyperparameters}
    file = cache_file(folder, task)
    try:
        return write_json(doc, file)
    except OSError as exc:
        logger.warning("Cannot keep the result of %s in %s (%s); it will not be reused",
                       task.name, file.parent, exc)
        return None
