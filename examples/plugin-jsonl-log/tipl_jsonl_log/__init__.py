"""Example tipl-opt plugin: one JSON line per event, appended to the file ``$TIPL_JSONL_LOG``.

Events: ``snapshot`` (a collection run recorded a snapshot), ``run_end`` (a learning-path file
was written) and ``jump`` (a TIPLOptimizer tried a jump). Every line holds ``event`` and ``time``
(Unix seconds) plus the event's fields; NaN and infinite numbers are written as ``null`` so that
any JSON reader can load the file. With ``TIPL_JSONL_LOG`` unset or empty the hooks do nothing.

The variable is read at every event, and each line is written with one ``write`` in append
mode, so parallel collection workers can share one file.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

from tipl_opt.hookspecs import hookimpl

ENV_VAR = "TIPL_JSONL_LOG"


def _clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become ``None``; tuples become lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _append(event: str, fields: dict[str, Any]) -> None:
    target = os.environ.get(ENV_VAR, "").strip()
    if not target:
        return
    line = json.dumps(_clean({"event": event, "time": time.time(), **fields}),
                      allow_nan=False, sort_keys=True)
    with open(target, "a", encoding="utf-8") as f:
        f.write(line + "\n")


@hookimpl
def tipl_on_snapshot(run: str, snapshot: Any) -> None:
    """Log where training stood; the weights themselves are left out (they are in the file)."""
    _append("snapshot", {
        "run": run,
        "env_steps": int(snapshot.env_steps),
        "grad_steps": int(snapshot.grad_steps),
        "eval_steps": int(snapshot.eval_steps),
        "return_mean": float(snapshot.return_mean),
        "return_std": float(snapshot.return_std),
        "num_params": sum(p.tensor.numel() for p in snapshot.params),
    })


@hookimpl
def tipl_on_run_end(run: str, path: str, info: dict[str, Any]) -> None:
    _append("run_end", {"run": run, "path": str(path), "info": dict(info)})


@hookimpl
def tipl_on_jump(report: Any) -> None:
    """``report`` is a :class:`tipl_opt.jumps.JumpReport`: all its fields go into the line."""
    _append("jump", report.to_dict())
