from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tipl_opt.paths import PathWriter, Snapshot, TaggedParam
from tipl_opt.plugins import reset_plugin_manager

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test sees a freshly loaded plugin manager and no TIPL_PLUGINS restriction."""
    monkeypatch.delenv("TIPL_PLUGINS", raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()


def write_synthetic_path(path: Path, *, snapshots: int = 6, seed: int = 0,
                         dtype: str = "float32", meta: dict | None = None) -> Path:
    """A small learning path with known values: weight i of snapshot t is t + i / 100."""
    writer = PathWriter(path, {"library": "synthetic", "algorithm": "ppo", "env_id": "Toy-v0",
                               "seed": seed, **(meta or {})}, dtype=dtype)  # type: ignore[arg-type]
    for t in range(snapshots):
        base = torch.arange(10, dtype=torch.float32) / 100 + t
        writer.add(Snapshot(
            params=[TaggedParam("actor.w", "actor", base[:6].reshape(2, 3)),
                    TaggedParam("critic.b", "critic", base[6:])],
            env_steps=t * 100, grad_steps=t * 10, return_mean=float(t), return_std=0.5,
            eval_steps=t * 20))
    return writer.finish()


@pytest.fixture
def synthetic_path(tmp_path: Path) -> Path:
    return write_synthetic_path(tmp_path / "synthetic-ppo-Toy-v0-s0.safetensors")
