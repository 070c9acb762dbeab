"""Save and restore a training state (model, AdamW, RNG, counters) without pickle."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


def save_state(folder: str | os.PathLike[str], *, net: torch.nn.Module,
               optimizer: torch.optim.Optimizer, generator: torch.Generator,
               meta: dict[str, Any]) -> None:
    """Write ``state.safetensors`` (tensors) and ``state.json`` (everything else)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
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
    save_file(tensors, str(folder / "state.safetensors"))
    doc = {"meta": meta, "param_groups": opt_state["param_groups"], "scalars": scalars}
    tmp = folder / ".state.json.tmp"
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, folder / "state.json")


def load_state(folder: str | os.PathLike[str], *, net: torch.nn.Module,
               optimizer: torch.optim.Optimizer, generator: torch.Generator) -> dict[str, Any]:
    """Restore what :func:`save_state` wrote; returns its ``meta``."""
    folder = Path(folder)
    tensors = load_file(str(folder / "state.safetensors"))
    doc = json.loads((folder / "state.json").read_text())
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
    meta: dict[str, Any] = doc["meta"]
    return meta
