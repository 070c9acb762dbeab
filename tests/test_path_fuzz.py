"""The learning-path reader never trusts a header: odd JSON types, bad bounds and random bytes
give a PathFormatError naming the file (never a traceback), and good files beside bad ones still
read."""

from __future__ import annotations

import json
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import write_synthetic_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tipl_opt.cli import app
from tipl_opt.errors import PathFormatError
from tipl_opt.paths import LearningPath, PathDataset, check_file, check_folder

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})
FUZZ = settings(max_examples=80, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


def split(raw: bytes) -> tuple[dict[str, Any], bytes]:
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def join(header: dict[str, Any], data: bytes) -> bytes:
    new = json.dumps(header).encode()
    new += b" " * (-len(new) % 8)
    return struct.pack("<Q", len(new)) + new + data


@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_synthetic_path(tmp_path_factory.mktemp("good") / "g.safetensors").read_bytes()


def check_only_path_format_errors(path: Path) -> None:
    """Everything `paths show`, `paths check` and a reader do with a file; only
    PathFormatError may come out."""
    problem = check_file(path)
    assert problem is None or isinstance(problem, str)
    try:
        lp = LearningPath(path)
        lp.validate()
    except PathFormatError as exc:
        assert str(path) in str(exc)
        return
    _ = (lp.name, lp.library, lp.algorithm, lp.env_id, lp.seed, repr(lp))
    _ = (lp.env_steps[-1], lp.return_mean[0], lp.wall_time, lp.grad_steps, lp.eval_steps)
    lp.window(0, 1)
    lp.snapshot(-1)


# -- the cases found by hand -------------------------------------------------------------------
def _meta(edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def apply(h: dict[str, Any]) -> None:
        meta = json.loads(h["__metadata__"]["tipl_path"])
        edit(meta)
        h["__metadata__"]["tipl_path"] = json.dumps(meta)

    return apply


def _set(tensor: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda h: h[tensor].__setitem__(key, value)


def _overflow(h: dict[str, Any]) -> None:  # 2**62 * 4 * 4 bytes wraps to 0 in int64
    h["weights"]["shape"] = [2**62, 4]
    begin = h["weights"]["data_offsets"][0]
    h["weights"]["data_offsets"] = [begin, begin]


def _overlap(h: dict[str, Any]) -> None:  # return_std's bytes over return_mean's
    h["return_std"]["data_offsets"] = list(h["return_mean"]["data_offsets"])


CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "metadata is a string": (lambda h: h.__setitem__("__metadata__", "oops"),
                             "'__metadata__' is not a JSON object"),
    "tipl_path is a list": (lambda h: h["__metadata__"].__setitem__("tipl_path", "[1, 2]"),
                            "'tipl_path' metadata: not a JSON object"),
    "offsets are strings": (_set("env_steps", "data_offsets", ["0", "48"]),
                            "data_offsets ['0', '48']"),
    "offsets are floats": (_set("env_steps", "data_offsets", [0.0, 48.5]),
                           "expected [begin, end] as two integers"),
    "shape of strings": (_set("weights", "shape", ["6", "10"]), "a shape is a list of integers"),
    "shape is a number": (_set("weights", "shape", 60), "a shape is a list of integers"),
    "negative shape": (_set("weights", "shape", [-6, -10]), "negative dimension"),
    "offsets into the header": (_set("env_steps", "data_offsets", [-48, 0]),
                                "outside the data section"),
    "offsets reversed": (_set("env_steps", "data_offsets", [48, 0]),
                         "outside the data section"),
    "byte count overflows": (_overflow, "too large for a file"),
    "overlapping tensors": (_overlap, "overlap"),
    "dtype is a list": (_set("weights", "dtype", ["F32"]), "has dtype ['F32']"),
    "tensor entry is a list": (lambda h: h.__setitem__("env_steps", [1, 2]),
                               "missing tensor 'env_steps'"),
    "seed is a string": (_meta(lambda m: m.__setitem__("seed", "abc")),
                         "metadata field 'seed' is 'abc', expected an integer or null"),
    "env_id is a number": (_meta(lambda m: m.__setitem__("env_id", 3)),
                           "metadata field 'env_id'"),
    "params is a string": (_meta(lambda m: m.__setitem__("params", "w")),
                           "'params' must be a non-empty list"),
    "param shape of strings": (_meta(lambda m: m["params"][0].__setitem__("shape", ["2", "3"])),
                               "params[0] ('actor.w') has shape ['2', '3']"),
    "param shape negative": (_meta(lambda m: m["params"][1].__setitem__("shape", [-4])),
                             "expected a list of non-negative integers"),
    "param without role": (_meta(lambda m: m["params"][0].pop("role")),
                           "needs 'name' and 'role' strings"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_header_with_odd_types_or_bounds_is_named_not_a_traceback(
        case: str, good_bytes: bytes, tmp_path: Path) -> None:
    edit, message = CASES[case]
    header, data = split(good_bytes)
    edit(header)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(join(header, data))
    with pytest.raises(PathFormatError) as info:
        LearningPath(bad)
    assert message in info.value.problem and str(bad) in str(info.value)
    assert check_file(bad) == info.value.problem
    (tmp_path / "good.safetensors").write_bytes(good_bytes)
    result = runner.invoke(app, ["paths", "check", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "bad.safetensors" in result.output and "1 of 2 files are valid" in result.output
    result = runner.invoke(app, ["paths", "show", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "good" in result.output and "1 runs." in result.output
    assert "bad.safetensors" in result.output


# -- fuzzing -----------------------------------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=12)
TENSORS = ["weights", "env_steps", "grad_steps", "eval_steps", "return_mean", "return_std",
           "wall_time"]
FIELDS = ["dtype", "shape", "data_offsets", None]
META_KEYS = ["seed", "library", "algorithm", "env_id", "params", "total_steps", "network"]


@FUZZ
@given(tensor=st.sampled_from([*TENSORS, "__metadata__"]), field=st.sampled_from(FIELDS),
       value=JSON)
def test_fuzzed_tensor_entries_never_raise_anything_else(good_bytes: bytes, tensor: str,
                                                         field: str | None, value: Any) -> None:
    header, data = split(good_bytes)
    if field is None or (tensor == "__metadata__" and field == "data_offsets"):
        header[tensor] = value
    elif tensor == "__metadata__":
        header[tensor][{"dtype": "format", "shape": "format_version"}[field]] = value
    else:
        header[tensor][field] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.safetensors"
        path.write_bytes(join(header, data))
        check_only_path_format_errors(path)


@FUZZ
@given(key=st.sampled_from(META_KEYS), value=JSON,
       param=st.integers(0, 1), part=st.sampled_from(["name", "shape", "role", None]))
def test_fuzzed_metadata_never_raises_anything_else(good_bytes: bytes, key: str, value: Any,
                                                     param: int, part: str | None) -> None:
    header, data = split(good_bytes)
    meta = json.loads(header["__metadata__"]["tipl_path"])
    if key == "params" and part is not None:
        meta["params"][param][part] = value
    else:
        meta[key] = value
    header["__metadata__"]["tipl_path"] = json.dumps(meta)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.safetensors"
        path.write_bytes(join(header, data))
        check_only_path_format_errors(path)


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1,
                      max_size=6),
       cut=st.one_of(st.none(), st.integers(0, 10_000)))
def test_random_bytes_never_raise_anything_else(good_bytes: bytes, edits: list[tuple[int, int]],
                                                cut: int | None) -> None:
    raw = bytearray(good_bytes)
    for position, byte in edits:
        raw[position % len(raw)] = byte
    if cut is not None:
        raw = raw[: cut % (len(raw) + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.safetensors"
        path.write_bytes(bytes(raw))
        check_only_path_format_errors(path)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seeds=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4))
def test_bad_files_are_named_and_good_ones_still_read(good_bytes: bytes,
                                                      seeds: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "a-good.safetensors").write_bytes(good_bytes)
        (root / "z-good.safetensors").write_bytes(good_bytes)
        for i, seed in enumerate(seeds):  # seeded byte mutations of the header
            rng = np.random.default_rng(seed)
            raw = bytearray(good_bytes)
            (n,) = struct.unpack("<Q", raw[:8])
            for pos in rng.integers(8, 8 + n, size=3):
                raw[pos] = int(rng.integers(0, 256))
            (root / f"m{i}.safetensors").write_bytes(bytes(raw))
        results = check_folder(root)
        assert results[root / "a-good.safetensors"] is None
        assert results[root / "z-good.safetensors"] is None
        dataset = PathDataset(root, strict=False)
        names = {lp.name for lp in dataset}
        assert {"a-good", "z-good"} <= names
        bad = {f.name for f, problem in results.items() if problem is not None}
        assert {Path(e.path).name for e in dataset.skipped} <= bad
        for lp in dataset:
            assert lp.window(0, 1).shape == (1, 10)
