"""Lazy, memory-mapped reading of learning paths: one run, or a folder of runs."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tipl_opt.errors import PathFormatError
from tipl_opt.paths.format import SUFFIX, Header, read_header
from tipl_opt.paths.spec import ParamSpec, spec_size, unflatten

logger = logging.getLogger(__name__)


# Metadata fields the reader and the commands use: name -> (allowed types, what they hold).
META_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "library": ((str,), "a string"),
    "algorithm": ((str,), "a string"),
    "env_id": ((str,), "a string"),
    "seed": ((int, type(None)), "an integer or null"),
    "total_steps": ((int,), "an integer"),
    "cadence": ((dict,), "a JSON object"),
    "network": ((dict,), "a JSON object"),
    "hyperparameters": ((dict,), "a JSON object"),
}


def check_meta(path: Path, meta: dict[str, Any]) -> None:
    """Raise :class:`PathFormatError` for a known metadata field of the wrong JSON type."""
    for key, (types, what) in META_TYPES.items():
        if key in meta and (not isinstance(meta[key], types) or isinstance(meta[key], bool)):
            raise PathFormatError(path, f"metadata field '{key}' is {meta[key]!r:.60}, expected "
                                  f"{what}")


def param_specs(path: Path, params: object) -> list[ParamSpec]:
    """The parameter spec from the metadata's ``params``, every field type-checked."""
    if not isinstance(params, list) or not params:
        raise PathFormatError(path, "corrupt parameter spec in metadata: 'params' must be a "
                              "non-empty list")
    specs = []
    for i, p in enumerate(params):
        if not isinstance(p, dict):
            raise PathFormatError(path, f"corrupt parameter spec in metadata: params[{i}] is "
                                  "not a JSON object")
        name, shape, role = p.get("name"), p.get("shape"), p.get("role")
        if not isinstance(name, str) or not isinstance(role, str):
            raise PathFormatError(path, f"corrupt parameter spec in metadata: params[{i}] needs "
                                  "'name' and 'role' strings")
        if (not isinstance(shape, list)
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                           for d in shape)):
            raise PathFormatError(path, f"corrupt parameter spec in metadata: params[{i}] "
                                  f"('{name:.60}') has shape {shape!r:.60}; expected a list of "
                                  "non-negative integers")
        specs.append(ParamSpec(name, tuple(shape), role))
    return specs


class LearningPath:
    """One run's learning path, opened lazily: the header is parsed, the values are memory-mapped.

    ``weights`` is a read-only [T, P] array backed by the file (float32 or float16 as stored);
    :meth:`window` returns float32 tensors. Raises :class:`PathFormatError` for a truncated or
    inconsistent file or an unknown format version.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._header: Header = read_header(self.path)
        self._maps: dict[str, np.ndarray[Any, Any]] = {}
        meta = self._header.meta
        check_meta(self.path, meta)
        self.specs = param_specs(self.path, meta.get("params"))
        shape = self._header.tensors["weights"].shape
        if spec_size(self.specs) != shape[1]:
            raise PathFormatError(
                self.path, f"inconsistent shapes: the parameter spec describes "
                f"{spec_size(self.specs)} values but 'weights' has {shape[1]} columns")
        if shape[0] == 0:
            raise PathFormatError(self.path, "holds no checkpoints")

    # -- metadata ---------------------------------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        return self._header.meta

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(SUFFIX)

    @property
    def library(self) -> str:
        return str(self.meta.get("library", "?"))

    @property
    def algorithm(self) -> str:
        return str(self.meta.get("algorithm", "?"))

    @property
    def env_id(self) -> str:
        return str(self.meta.get("env_id", "?"))

    @property
    def seed(self) -> int | None:
        seed = self.meta.get("seed")
        return seed if isinstance(seed, int) else None

    @property
    def num_snapshots(self) -> int:
        return self._header.tensors["weights"].shape[0]

    @property
    def num_params(self) -> int:
        return self._header.tensors["weights"].shape[1]

    def __len__(self) -> int:
        return self.num_snapshots

    def __repr__(self) -> str:
        return (f"LearningPath({self.name!r}, {self.library}/{self.algorithm} on {self.env_id}, "
                f"T={self.num_snapshots}, P={self.num_params})")

    # -- values ----------------------------------------------------------------------------
    def _array(self, name: str) -> np.ndarray[Any, Any]:
        """The tensor ``name`` memory-mapped (mapped once, on first use)."""
        cached = self._maps.get(name)
        if cached is not None:
            return cached
        entry = self._header.tensors[name]
        if entry.end == entry.start:
            array: np.ndarray[Any, Any] = np.zeros(entry.shape, dtype=entry.dtype)
        else:
            try:
                array = np.memmap(self.path, dtype=entry.dtype, mode="r", offset=entry.start,
                                  shape=entry.shape)
            except (OSError, ValueError) as exc:  # the file changed since its header was read
                raise PathFormatError(self.path, f"cannot read tensor '{name}': {exc}") from exc
        self._maps[name] = array
        return array

    @property
    def weights(self) -> np.ndarray[Any, Any]:
        """[T, P] memory-mapped weights (read-only)."""
        return self._array("weights")

    @property
    def env_steps(self) -> np.ndarray[Any, Any]:
        return np.array(self._array("env_steps"))

    @property
    def grad_steps(self) -> np.ndarray[Any, Any]:
        return np.array(self._array("grad_steps"))

    @property
    def eval_steps(self) -> np.ndarray[Any, Any]:
        return np.array(self._array("eval_steps"))

    @property
    def return_mean(self) -> np.ndarray[Any, Any]:
        return np.array(self._array("return_mean"))

    @property
    def return_std(self) -> np.ndarray[Any, Any]:
        return np.array(self._array("return_std"))

    @property
    def wall_time(self) -> np.ndarray[Any, Any]:
        return np.array(self._array("wall_time"))

    def window(self, start: int, length: int, stride: int = 1) -> torch.Tensor:
        """Checkpoints ``start, start+stride, ...`` (``length`` of them): float32 [K, P]."""
        stop = start + (length - 1) * stride + 1
        if start < 0 or length < 1 or stop > self.num_snapshots:
            raise IndexError(f"window [{start}:{stop}:{stride}] is outside 0..{self.num_snapshots}")
        rows = np.asarray(self.weights[start:stop:stride], dtype=np.float32)
        return torch.from_numpy(rows.copy())

    def snapshot(self, index: int) -> dict[str, torch.Tensor]:
        """The named tensors of checkpoint ``index`` (negative indices count from the end)."""
        row = self.window(index % self.num_snapshots, 1)[0]
        return unflatten(row, self.specs)

    def validate(self) -> None:
        """Read every value and raise :class:`PathFormatError` on the first problem found."""
        weights = self._array("weights")
        for i in range(0, weights.shape[0], 256):  # bounded memory for large P
            if not np.all(np.isfinite(weights[i : i + 256])):
                raise PathFormatError(self.path, "non-finite values in 'weights'")
        if not np.all(np.isfinite(self.wall_time)):
            raise PathFormatError(self.path, "non-finite values in 'wall_time'")
        for name in ("return_mean", "return_std"):  # NaN means "not evaluated"; inf is an error
            if np.any(np.isinf(self._array(name))):
                raise PathFormatError(self.path, f"infinite values in '{name}'")
        for name in ("env_steps", "grad_steps", "eval_steps"):
            steps = self._array(name)
            if steps.size and (np.any(steps < 0) or np.any(np.diff(steps) < 0)):
                raise PathFormatError(self.path, f"'{name}' is negative or decreasing")


def path_files(root: str | os.PathLike[str]) -> list[Path]:
    """The learning-path files ``root`` names: itself when it is a file, else every
    ``*.safetensors`` below it (recursively, sorted, hidden files left out). Raises
    ``FileNotFoundError`` when ``root`` is neither."""
    root = Path(root)
    if root.is_file():
        return [root]
    if root.is_dir():
        return [f for f in sorted(root.rglob(f"*{SUFFIX}")) if not f.name.startswith(".")]
    raise FileNotFoundError(f"no such folder or file: {root}")


class PathDataset(Sequence[LearningPath]):
    """Every learning path in a folder (recursively), or the one file ``root`` names,
    optionally filtered.

    Opening is lazy: only headers are read. With ``strict=True`` (default) a bad file raises
    :class:`PathFormatError` naming it; with ``strict=False`` it is skipped with a warning and
    listed in :attr:`skipped`.
    """

    def __init__(self, root: str | os.PathLike[str], *, library: str | None = None,
                 algorithm: str | None = None, env_id: str | None = None,
                 strict: bool = True) -> None:
        self.root = Path(root)
        self.skipped: list[PathFormatError] = []
        paths: list[LearningPath] = []
        for file in path_files(self.root):
            try:
                lp = LearningPath(file)
            except PathFormatError as exc:
                if strict:
                    raise
                logger.warning("skipping %s", exc)
                self.skipped.append(exc)
                continue
            if library and lp.library != library:
                continue
            if algorithm and lp.algorithm != algorithm:
                continue
            if env_id and lp.env_id != env_id:
                continue
            paths.append(lp)
        self._paths = paths

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, index: int) -> LearningPath:  # type: ignore[override]
        return self._paths[index]

    def __iter__(self) -> Iterator[LearningPath]:
        return iter(self._paths)
