"""Finished runs kept on disk, so that an interrupted collection, comparison or benchmark
resumes where it stopped instead of training everything again: the one place that decides
whether a finished run can be reused.

* ``tipl collect``: the learning path itself is the record (:func:`finished_path`): reused when
  it is readable and was collected with the same request (library, train spec, dtype, TIPL
  setup, as stored in its metadata); a file collected with other settings is refused, so a
  dataset never mixes network shapes or budgets.
* ``tipl train`` and ``tipl bench``: see below.

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
import math
from pathlib import Path

import torch

from tipl_opt.collect.runner import RunResult, RunTask, request_of
from tipl_opt.curves import write_json
from tipl_opt.errors import ConfigError, PathFormatError
from tipl_opt.machine import cpu_model
from tipl_opt.paths.format import read_header

logger = logging.getLogger(__name__)

FORMAT = "tipl-run-result"
VERSION = 1


@functools.lru_cache(maxsize=32)
def _checkpoint_digest(predictor: str) -> str:
    """The predictor by content: a checkpoint folder (or ``default``) is hashed file by file, so
    retraining into the same folder changes the fingerprint; a registered name is itself."""
    from tipl_opt.predictors import default_predictor_path

    if predictor in ("trend", "average"):  # built around the default: changes with it
        return f"{predictor}:{_checkpoint_digest('default')}"
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
    predictor by content, the adapters' defaults a TIPL run of its algorithm takes
    (:func:`~tipl_opt.adapters.attachment.adapter_defaults`), and the versions of tipl-opt,
    torch and the RL library."""
    from tipl_opt import __version__
    from tipl_opt.adapters import attachment
    from tipl_opt.jumps import JumpConfig

    tipl = None
    if task.tipl is not None:
        # unset settings (None: the default) are left out, so a setting added later keeps
        # kept runs' fingerprints as they were
        tipl = task.tipl.model_dump(mode="json", exclude_none=True)
        # the limit in effect, so that given explicitly or by default it is the same run
        tipl["entropy_limit"] = attachment.entropy_limit_of(task.tipl)
        tipl["targets"] = attachment.targets_of(task.tipl, task.spec.algo)
        value_grad = attachment.value_grad_limit_of(task.tipl, task.spec.algo)
        if value_grad is not None:  # only where checked, so other runs keep their fingerprint
            tipl["value_grad_limit"] = value_grad
        # the fields given, validated: a field added later with its default leaves kept runs'
        # fingerprints as they were
        tipl["jump"] = JumpConfig.model_validate(task.tipl.jump).explicit()
        tipl["predictor"] = _checkpoint_digest(task.tipl.predictor)
        tipl["adapter_defaults"] = attachment.adapter_defaults(task.spec.algo)
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
            jump_steps=[int(s) for s in doc.get("jump_steps", [])],  # absent in older files
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
           "jumps": result.jumps, "jump_steps": result.jump_steps,
           "hyperparameters": result.hyperparameters,
           "machine": cpu_model()}
    file = cache_file(folder, task)
    try:
        return write_json(doc, file)
    except OSError as exc:
        logger.warning("Cannot keep the result of %s in %s (%s); it will not be reused",
                       task.name, file.parent, exc)
        return None


_OLDER_FIELDS = {"total_steps": ("total_steps",), "every": ("cadence", "every"),
                 "hidden_sizes": ("network", "hidden_sizes"),
                 "activation": ("network", "activation"),
                 "eval_episodes": ("evaluation", "episodes")}
"""Where learning paths written before ``request`` was recorded keep the spec's fields."""


def _request_differences(meta: dict[str, object], task: RunTask) -> list[str]:
    """``"field: on disk -> asked"`` for every setting that differs."""
    asked = request_of(task)
    stored = meta.get("request")
    diffs: list[str] = []
    if isinstance(stored, dict):
        flat_asked = {**asked["spec"], "lib": asked["lib"], "dtype": asked["dtype"],
                      "tipl": asked["tipl"]}
        spec = stored.get("spec")
        flat_stored = {**(spec if isinstance(spec, dict) else {}), "lib": stored.get("lib"),
                       "dtype": stored.get("dtype"), "tipl": stored.get("tipl")}
        for key in sorted(set(flat_asked) | set(flat_stored)):
            if key == "seed":
                continue
            if json.dumps(flat_stored.get(key), sort_keys=True) != json.dumps(
                    flat_asked.get(key), sort_keys=True):
                diffs.append(f"{key}: {flat_stored.get(key)!r} -> {flat_asked.get(key)!r}")
        return diffs
    for key, where in _OLDER_FIELDS.items():  # older files: what their metadata holds
        value: object = meta
        for part in where:
            value = value.get(part) if isinstance(value, dict) else None
        want = asked["spec"][key]
        if value is not None and json.dumps(value) != json.dumps(want):
            diffs.append(f"{key}: {value!r} -> {want!r}")
    return diffs


def finished_path(task: RunTask) -> RunResult | None:
    """The finished learning path of a collection run, or ``None`` to collect it (absent or
    unreadable, with a warning). Raises ConfigError when the file belongs to another run or
    was collected with other settings (names each difference)."""
    if not task.path.exists():
        return None
    try:
        header = read_header(task.path)
    except PathFormatError as exc:
        logger.warning("%s is unreadable (%s); it will be collected again", task.path,
                       exc.problem)
        return None
    meta = header.meta
    if (meta.get("library"), meta.get("algorithm"), meta.get("env_id"), meta.get("seed")) != (
            task.lib, task.spec.algo, task.spec.env_id, task.spec.seed):
        raise ConfigError(f"{task.path} belongs to another run ({meta.get('library')} "
                          f"{meta.get('algorithm')} {meta.get('env_id')}); use another --out.")
    diffs = _request_differences(meta, task)
    if diffs:
        raise ConfigError(f"{task.path} was collected with other settings ({'; '.join(diffs)}). "
                          "A dataset must not mix them: use another --out, or delete the "
                          "folder's runs to collect them again.")
    t, p = header.tensors["weights"].shape
    return RunResult(task.name, task.path, t, p, math.nan, math.nan,
                     float(meta.get("wall_time_s", 0.0) or 0.0), skipped=True,
                     seed=task.spec.seed)
