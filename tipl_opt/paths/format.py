"""The learning-path file format, version 1 (specified in ``docs/path-format.md``).

A learning path is one safetensors file per training run:

* ``weights`` [T, P] float32 (or float16): the flattened weights at each of T checkpoints;
* ``env_steps``, ``grad_steps``, ``eval_steps`` [T] int64; ``return_mean``, ``return_std`` [T]
  float32; ``wall_time`` [T] float64 (seconds since the run started);
* header metadata ``{"format": "tipl-learning-path", "format_version": "1", "tipl_path": JSON}``.

This module reads and writes the raw container: the header, the tensors' byte ranges and atomic
file replacement. It never unpickles anything.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tipl_opt import atomic
from tipl_opt.errors import PathFormatError

FORMAT_NAME = "tipl-learning-path"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
SUFFIX = ".safetensors"

# Every tensor a version-1 file holds: name -> (allowed dtypes, rank).
TENSORS: dict[str, tuple[frozenset[str], int]] = {
    "weights": (frozenset({"F32", "F16"}), 2),
    "env_steps": (frozenset({"I64"}), 1),
    "grad_steps": (frozenset({"I64"}), 1),
    "eval_steps": (frozenset({"I64"}), 1),
    "return_mean": (frozenset({"F32"}), 1),
    "return_std": (frozenset({"F32"}), 1),
    "wall_time": (frozenset({"F64"}), 1),
}

_NUMPY_DTYPES: dict[str, np.dtype[Any]] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
}
_DTYPE_NAMES = {v: k for k, v in _NUMPY_DTYPES.items()}
_MAX_HEADER = 100_000_000


@dataclass(frozen=True)
class TensorEntry:
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    start: int  # absolute byte offset in the file
    end: int


@dataclass(frozen=True)
class Header:
    """The parsed header of a learning-path file."""

    tensors: dict[str, TensorEntry]
    meta: dict[str, Any]  # the decoded ``tipl_path`` JSON


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _tensor_entry(path: Path, name: str, info: object, dtypes: frozenset[str], rank: int,
                  data_start: int, size: int) -> TensorEntry:
    """Validate one tensor's header entry: types, dtype, rank, bounds and byte count.

    All arithmetic is on Python ints, so a shape whose byte count would overflow 64 bits is
    still compared exactly (and found not to fit the file)."""
    if not isinstance(info, dict):
        raise PathFormatError(path, f"missing tensor '{name}'")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in dtypes:
        raise PathFormatError(path, f"tensor '{name}' has dtype {dtype!r}, expected one of "
                              f"{sorted(dtypes)}")
    if not isinstance(shape, list) or not all(_is_int(d) for d in shape):
        raise PathFormatError(path, f"tensor '{name}' has shape {shape!r}; a shape is a list "
                              "of integers")
    if len(shape) != rank:
        raise PathFormatError(path, f"tensor '{name}' has shape {shape}, expected rank {rank}")
    if any(d < 0 for d in shape):
        raise PathFormatError(path, f"tensor '{name}' has a negative dimension in {shape}")
    if any(d > size for d in shape):
        raise PathFormatError(path, f"tensor '{name}' has shape {shape}, too large for a file "
                              f"of {size} bytes")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(_is_int(o) for o in offsets)):
        raise PathFormatError(path, f"tensor '{name}' has data_offsets {offsets!r}; expected "
                              "[begin, end] as two integers")
    begin, end = offsets
    if not 0 <= begin <= end:
        raise PathFormatError(path, f"tensor '{name}' has data_offsets {offsets}, outside the "
                              "data section (they must satisfy 0 <= begin <= end)")
    np_dtype = _NUMPY_DTYPES[dtype]
    start, stop = data_start + begin, data_start + end
    expected = math.prod(shape) * np_dtype.itemsize
    if stop > size:
        raise PathFormatError(
            path, f"truncated: tensor '{name}' ends at byte {stop} but the file has {size} "
            "bytes (an interrupted copy?); re-collect or re-copy this run")
    if end - begin != expected:
        raise PathFormatError(path, f"tensor '{name}': byte range does not match its shape "
                              f"({end - begin} bytes for {shape} x {np_dtype.itemsize})")
    return TensorEntry(np_dtype, tuple(shape), start, stop)


def read_header(path: str | os.PathLike[str]) -> Header:
    """Parse and validate the container header; raise :class:`PathFormatError` naming the problem.

    Checks the header itself (a JSON object whose entries have the right types), the format
    name and version, each tensor's dtype and rank, that every tensor's bytes lie inside the
    data section without overlapping another's and match dtype x shape, that the per-checkpoint
    tensors agree on T, and that the file is long enough to hold every tensor (a truncated file
    fails here). Values are not read.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            raw_len = f.read(8)
            if len(raw_len) < 8:
                raise PathFormatError(path, f"truncated: {size} bytes is too short for a header")
            (header_len,) = struct.unpack("<Q", raw_len)
            if header_len > _MAX_HEADER or 8 + header_len > size:
                raise PathFormatError(
                    path, f"truncated or not a safetensors file (header of {header_len} bytes "
                    f"declared, file has {size})")
            raw = f.read(header_len)
    except OSError as exc:
        raise PathFormatError(path, f"cannot read: {exc.strerror or exc}") from exc
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise PathFormatError(path, f"corrupt header: {exc}") from exc
    if not isinstance(header, dict):
        raise PathFormatError(path, "corrupt header: not a JSON object")
    file_meta = header.pop("__metadata__", None) or {}
    if not isinstance(file_meta, dict):
        raise PathFormatError(path, "corrupt header: '__metadata__' is not a JSON object")
    if file_meta.get("format") != FORMAT_NAME:
        raise PathFormatError(path, "not a tipl learning path (missing 'format' metadata)")
    version = str(file_meta.get("format_version"))
    if not version.isdigit() or int(version) not in SUPPORTED_VERSIONS:
        raise PathFormatError(
            path, f"unknown format version {version[:40]!r}; this tipl-opt reads versions "
            f"{sorted(SUPPORTED_VERSIONS)}: upgrade tipl-opt to read it")
    try:
        meta = json.loads(file_meta["tipl_path"])
    except (KeyError, TypeError, json.JSONDecodeError, RecursionError) as exc:
        raise PathFormatError(path, f"corrupt 'tipl_path' metadata: {exc}") from exc
    if not isinstance(meta, dict):
        raise PathFormatError(path, "corrupt 'tipl_path' metadata: not a JSON object")

    data_start = 8 + header_len
    tensors = {name: _tensor_entry(path, name, header.get(name), dtypes, rank, data_start, size)
               for name, (dtypes, rank) in TENSORS.items()}
    ranges = sorted((e.start, e.end, n) for n, e in tensors.items() if e.end > e.start)
    for (_, end_a, a), (start_b, _, b) in itertools.pairwise(ranges):
        if start_b < end_a:
            raise PathFormatError(path, f"tensors '{a}' and '{b}' overlap in the file (corrupt "
                                  "data_offsets)")
    t = tensors["weights"].shape[0]
    for name, entry in tensors.items():
        if entry.shape[0] != t:
            raise PathFormatError(
                path, f"inconsistent shapes: '{name}' has {entry.shape[0]} checkpoints, "
                f"'weights' has {t}")
    return Header(tensors=tensors, meta=meta)


def write_atomic(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray[Any, Any]],
                 meta: Mapping[str, Any]) -> Path:
    """Write a learning-path file: into a temporary file in the same folder, then rename.

    An interrupted write leaves the previous state (no file, or the old file), never half a file.
    ``arrays`` must hold every tensor of :data:`TENSORS` with an allowed dtype.
    """
    path = Path(path)
    header: dict[str, Any] = {
        "__metadata__": {
            "format": FORMAT_NAME,
            "format_version": str(FORMAT_VERSION),
            "tipl_path": json.dumps(meta, sort_keys=True),
        }
    }
    offset = 0
    blobs = []
    for name in TENSORS:
        arr = np.ascontiguousarray(arrays[name])
        dtype_name = _DTYPE_NAMES.get(arr.dtype.newbyteorder("<"))
        if dtype_name is None or dtype_name not in TENSORS[name][0]:
            raise ValueError(f"tensor '{name}' has unsupported dtype {arr.dtype}")
        blob = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtype_name, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # safetensors aligns the data section to 8 bytes

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            for blob in blobs:
                f.write(blob)
            f.flush()
            os.fsync(f.fileno())

    return atomic.atomic_write(path, write)
