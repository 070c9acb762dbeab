"""Save and restore a training state (model, AdamW, RNG, counters) without pickle.

The state is one file, ``state.safetensors``: the tensors, with everything else as JSON in its
metadata, written atomically. An interrupted save leaves the previous state whole; a state that
cannot be read raises :class:`~tipl_opt.errors.ConfigError` saying what to do.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from tipl_opt import atomic
from tipl_opt.errors import ConfigError

STATE_FILE = "state.safetensors"
STATE_FORMAT = "tipl-pretrain-state"


def _unreadable(folder: Path, problem: str) -> ConfigError:
    return ConfigError(f"the resume state {folder / STATE_FILE} {problem}; delete {folder} to "
                       "start afresh (or pass --restart)")


def save_state(folder: str | os.PathLike[str], *, net: torch.nn.Module,
               optimizer: torch.optim.Optimizer, generator: torch.Generator,
               meta: dict[str, Any]) -> Path:
    """Write ``folder/state.safetensors`` (tensors, and the rest as JSON metadata) atomically."""
    folder = Path(folder)
    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    opt_state = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in opt_state["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt.{pid}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    tensors["rng"] = generator.get_state()
    doc = {"meta": meta, "param_groups": opt_state["param_groups"], "scalars": scalars}
    metadata = {"format": STATE_FORMAT, "state": json.dumps(doc)}
    return atomic.atomic_write(folder / STATE_FILE,
                               lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def has_state(folder: str | os.PathLike[str]) -> bool:
    return (Path(folder) / STATE_FILE).exists()


def read_meta(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``meta`` a saved state was written with, read without loading any tensor."""
    folder = Path(folder)
    try:
        with safe_open(str(folder / STATE_FILE), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise _unreadable(folder, f"cannot be read ({exc})") from exc
    if metadata.get("format") != STATE_FORMAT:
        raise _unreadable(folder, "was not written by this version of tipl pretrain")
    try:
        doc = json.loads(metadata["state"])
        meta: dict[str, Any] = doc["meta"]
        if not isinstance(meta, dict):
            raise TypeError("'meta' is not an object")
    except (KeyError, TypeError, ValueError) as exc:
        raise _unreadable(folder, f"is corrupt ({exc})") from exc
    return meta


def load_state(folder: str | os.PathLike[str], *, net: torch.nn.Module,
               optimizer: torch.optim.Optimizer, generator: torch.Generator) -> dict[str, Any]:
    """Restore what :func:`save_state` wrote; returns its ``meta``. A state that does not fit
    ``net`` and ``optimizer`` raises :class:`ConfigError`."""
    folder = Path(folder)
    read_meta(folder)
    try:
        with safe_open(str(folder / STATE_FILE), framework="pt") as f:
            doc = json.loads((f.metadata() or {})["state"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, pid, name = key.split(".", 2)
                state.setdefault(int(pid), {})[name] = value
        for pid, entry in doc["scalars"].items():
            state.setdefault(int(pid), {}).update(entry)
        optimizer.load_state_dict({"state": state, "param_groups": doc["param_groups"]})
        generator.set_state(tensors["rng"])
    except Exception as exc:  # any mismatch or corruption: say what to do, never a traceback
        raise _unreadable(folder, f"does not fit this model ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    meta: dict[str, Any] = doc["meta"]
    return meta
