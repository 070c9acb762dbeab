"""Finished runs of ``tipl train`` and ``tipl bench`` kept on disk, so that an interrupted or
split comparison resumes where it stopped instead of training everything again.

Each finished run is one small JSON file, ``OUT/runs/<run>.json``, holding its learning curve,
jump counters and a fingerprint of what was trained (library, algorithm, env, seed, budget,
hyperparameters, TIPL setup and the tipl-opt version). A file whose fingerprint does not match
the run asked for, or that cannot be read, is ignored (with a warning) and the run is trained
again; nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from tipl_opt.collect.runner import RunResult, RunTask

logger = logging.getLogger(__name__)

FORMAT = "tipl-run-result"
VERSION = 1


def fingerprint(task: RunTask) -> str:
    """A digest of everything that determines the run's outcome."""
    from tipl_opt import __version__

    what = {"lib": task.lib, "spec": task.spec.model_dump(mode="json"),
            "tipl": task.tipl.model_dump(mode="json") if task.tipl else None,
            "tipl_opt": __version__}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def cache_file(folder: Path, task: RunTask) -> Path:
    return folder / "runs" / f"{task.name}.json"


def _number(x: Any) -> float:
    return float(x)  # also reads "nan" and "inf", written as text


def load(folder: Path, task: RunTask) -> RunResult | None:
    """The cached result of ``task`` in ``folder``, or ``None`` (absent, stale or unreadable)."""
    file = cache_file(folder, task)
    if not file.exists():
        return None
    try:
        doc = json.loads(file.read_text())
        if doc.get("format") != FORMAT or doc.get("version") != VERSION:
            raise ValueError(f"not a version-{VERSION} {FORMAT} file")
        if doc["fingerprint"] != fingerprint(task):
            logger.info("%s was trained with other settings; training %s again", file,
                        task.name)
            return None
        return RunResult(
            name=task.name, path=task.path, snapshots=int(doc["snapshots"]),
            params=int(doc["params"]), first_return=_number(doc["first_return"]),
            last_return=_number(doc["last_return"]), wall_time_s=_number(doc["wall_time_s"]),
            skipped=True,
            curve=[(int(s), _number(m), _number(sd)) for s, m, sd in doc["curve"]],
            jumps={str(k): int(v) for k, v in doc["jumps"].items()},
            hyperparameters=dict(doc.get("hyperparameters", {})))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("Ignoring unreadable run result %s (%s); training %s again", file, exc,
                       task.name)
        return None


def store(folder: Path, task: RunTask, result: RunResult) -> Path:
    """Write ``result`` atomically (temp file + rename): a crash never leaves half a file."""

    def clean(x: float) -> float | str:
        return x if math.isfinite(x) else str(x)

    doc = {"format": FORMAT, "version": VERSION, "fingerprint": fingerprint(task),
           "run": task.name, "lib": task.lib, "spec": task.spec.model_dump(mode="json"),
           "tipl": task.tipl.model_dump(mode="json") if task.tipl else None,
           "snapshots": result.snapshots, "params": result.params,
           "first_return": clean(result.first_return), "last_return": clean(result.last_return),
           "wall_time_s": result.wall_time_s,
           "curve": [[s, clean(m), clean(sd)] for s, m, sd in result.curve],
           "jumps": result.jumps, "hyperparameters": result.hyperparameters}
    file = cache_file(folder, task)
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, default=str)
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return file
