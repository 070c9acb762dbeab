"""Accumulate the snapshots of one run and write them as one learning-path file."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tipl_opt.paths.format import FORMAT_VERSION, write_atomic
from tipl_opt.paths.spec import ParamSpec, Snapshot, flatten, spec_size

StorageDtype = Literal["float32", "float16"]


class PathWriter:
    """Collects :class:`Snapshot` records in memory; :meth:`finish` writes the file atomically.

    The parameter spec is taken from the first snapshot; every later snapshot must have the same
    names, shapes and roles in the same order. Nothing touches ``path`` before :meth:`finish`, so
    an interrupted run leaves no file behind.
    """

    def __init__(self, path: str | os.PathLike[str], meta: Mapping[str, Any],
                 dtype: StorageDtype = "float32") -> None:
        if dtype not in ("float32", "float16"):
            raise ValueError(f"dtype must be 'float32' or 'float16', got {dtype!r}")
        self.path = Path(path)
        self.meta = dict(meta)
        self.dtype = dtype
        self.specs: list[ParamSpec] | None = None
        self._rows: list[np.ndarray[Any, Any]] = []
        self._scalars: list[tuple[int, int, int, float, float, float]] = []
        self._t0 = time.perf_counter()

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, snapshot: Snapshot) -> None:
        specs = [p.spec for p in snapshot.params]
        if self.specs is None:
            if not specs:
                raise ValueError("a snapshot must hold at least one parameter")
            self.specs = specs
        elif specs != self.specs:
            raise ValueError("snapshot parameters differ from the first snapshot's "
                             f"({len(specs)} vs {len(self.specs)} tensors or different shapes)")
        row = flatten(snapshot.params).numpy()
        self._rows.append(row.astype(np.float16) if self.dtype == "float16" else row.copy())
        self._scalars.append((snapshot.env_steps, snapshot.grad_steps, snapshot.eval_steps,
                              snapshot.return_mean, snapshot.return_std,
                              time.perf_counter() - self._t0))

    def finish(self, **extra_meta: Any) -> Path:
        """Write the file (temporary file + rename) and return its path."""
        if self.specs is None:
            raise ValueError(f"no snapshot was added; nothing to write to {self.path}")
        cols = list(zip(*self._scalars, strict=True))
        arrays = {
            "weights": np.stack(self._rows),
            "env_steps": np.asarray(cols[0], dtype=np.int64),
            "grad_steps": np.asarray(cols[1], dtype=np.int64),
            "eval_steps": np.asarray(cols[2], dtype=np.int64),
            "return_mean": np.asarray(cols[3], dtype=np.float32),
            "return_std": np.asarray(cols[4], dtype=np.float32),
            "wall_time": np.asarray(cols[5], dtype=np.float64),
        }
        from tipl_opt import __version__

        meta = {
            **self.meta,
            **extra_meta,
            "format_version": FORMAT_VERSION,
            "tipl_opt_version": __version__,
            "params": [s.to_json() for s in self.specs],
            "num_params": spec_size(self.specs),
            "num_snapshots": len(self._rows),
            "storage_dtype": self.dtype,
            "wall_time_s": round(time.perf_counter() - self._t0, 3),
        }
        return write_atomic(self.path, arrays, meta)
