"""The learning-path file format: round trip, laziness, and every kind of bad file."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_synthetic_path
from safetensors.numpy import load_file

from tipl_opt.errors import PathFormatError
from tipl_opt.paths import LearningPath, PathDataset, PathWriter, Snapshot, TaggedParam, check_file
from tipl_opt.paths.format import FORMAT_VERSION, read_header


def test_round_trip_keeps_weights_steps_returns_and_spec(synthetic_path: Path) -> None:
    lp = LearningPath(synthetic_path)
    assert (lp.num_snapshots, lp.num_params) == (6, 10)
    assert [s.name for s in lp.specs] == ["actor.w", "critic.b"]
    assert [s.shape for s in lp.specs] == [(2, 3), (4,)]
    assert [s.role for s in lp.specs] == ["actor", "critic"]
    expected = np.arange(10, dtype=np.float32) / 100 + 4
    np.testing.assert_array_equal(lp.weights[4], expected)
    np.testing.assert_array_equal(lp.env_steps, np.arange(6) * 100)
    np.testing.assert_array_equal(lp.grad_steps, np.arange(6) * 10)
    np.testing.assert_array_equal(lp.eval_steps, np.arange(6) * 20)
    np.testing.assert_array_equal(lp.return_mean, np.arange(6, dtype=np.float32))
    assert lp.meta["format_version"] == FORMAT_VERSION
    assert lp.meta["tipl_opt_version"]
    assert (lp.library, lp.algorithm, lp.env_id, lp.seed) == ("synthetic", "ppo", "Toy-v0", 0)
    assert np.all(np.diff(lp.wall_time) >= 0)
    lp.validate()


def test_window_and_snapshot_unflatten(synthetic_path: Path) -> None:
    lp = LearningPath(synthetic_path)
    window = lp.window(1, 3, stride=2)
    assert window.shape == (3, 10) and window.dtype == torch.float32
    assert window[:, 0].tolist() == [1.0, 3.0, 5.0]
    last = lp.snapshot(-1)
    assert last["actor.w"].shape == (2, 3)
    torch.testing.assert_close(last["critic.b"], torch.tensor([5.06, 5.07, 5.08, 5.09]))
    with pytest.raises(IndexError):
        lp.window(4, 3)


def test_weights_are_memory_mapped_not_loaded(synthetic_path: Path) -> None:
    assert isinstance(LearningPath(synthetic_path).weights, np.memmap)


def test_file_is_plain_safetensors(synthetic_path: Path) -> None:
    tensors = load_file(str(synthetic_path))
    assert tensors["weights"].shape == (6, 10)
    assert tensors["env_steps"].dtype == np.int64


def test_float16_storage_reads_back_as_float32(tmp_path: Path) -> None:
    path = write_synthetic_path(tmp_path / "half.safetensors", dtype="float16")
    lp = LearningPath(path)
    assert lp.weights.dtype == np.float16
    assert lp.window(0, 2).dtype == torch.float32
    np.testing.assert_allclose(lp.window(5, 1)[0].numpy(), np.arange(10) / 100 + 5, atol=5e-3)
    half = read_header(path).tensors["weights"]
    assert half.end - half.start == 6 * 10 * 2  # two bytes per stored weight


def test_writer_rejects_a_snapshot_with_other_parameters(tmp_path: Path) -> None:
    writer = PathWriter(tmp_path / "x.safetensors", {})
    writer.add(Snapshot([TaggedParam("a", "actor", torch.zeros(3))], 0, 0, 0.0, 0.0))
    with pytest.raises(ValueError, match="differ"):
        writer.add(Snapshot([TaggedParam("a", "actor", torch.zeros(4))], 1, 1, 0.0, 0.0))


def test_nothing_is_written_before_finish(tmp_path: Path) -> None:
    writer = PathWriter(tmp_path / "x.safetensors", {})
    writer.add(Snapshot([TaggedParam("a", "actor", torch.zeros(3))], 0, 0, 0.0, 0.0))
    assert list(tmp_path.iterdir()) == []
    writer.finish()
    assert [p.name for p in tmp_path.iterdir()] == ["x.safetensors"]


def test_interrupted_write_leaves_no_file_and_keeps_the_old_one(
        synthetic_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = synthetic_path.read_bytes()

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("tipl_opt.paths.format.os.replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_synthetic_path(synthetic_path, snapshots=2)
    assert [p.name for p in synthetic_path.parent.iterdir()] == [synthetic_path.name]
    assert synthetic_path.read_bytes() == before


@pytest.mark.parametrize("keep", [0, 5, 40, -8])
def test_truncated_file_is_rejected_with_the_file_named(synthetic_path: Path, keep: int) -> None:
    data = synthetic_path.read_bytes()
    synthetic_path.write_bytes(data[:keep])
    with pytest.raises(PathFormatError, match="truncated|corrupt") as info:
        LearningPath(synthetic_path)
    assert str(synthetic_path) in str(info.value)


def _rewrite_header(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    edit(header)
    new = json.dumps(header).encode()
    new += b" " * (-len(new) % 8)
    path.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n :])


def test_unknown_version_is_rejected(synthetic_path: Path) -> None:
    _rewrite_header(synthetic_path, lambda h: h["__metadata__"].update(format_version="99"))
    with pytest.raises(PathFormatError, match="unknown format version '99'.*upgrade"):
        LearningPath(synthetic_path)


def test_inconsistent_shapes_are_rejected(synthetic_path: Path) -> None:
    def edit(h: dict) -> None:  # type: ignore[type-arg]
        h["env_steps"]["shape"] = [3]
        start = h["env_steps"]["data_offsets"][0]
        h["env_steps"]["data_offsets"][1] = start + 24

    _rewrite_header(synthetic_path, edit)
    with pytest.raises(PathFormatError, match="inconsistent shapes"):
        LearningPath(synthetic_path)


def test_spec_that_disagrees_with_weights_is_rejected(synthetic_path: Path) -> None:
    def edit(h: dict) -> None:  # type: ignore[type-arg]
        meta = json.loads(h["__metadata__"]["tipl_path"])
        meta["params"][0]["shape"] = [5, 3]
        h["__metadata__"]["tipl_path"] = json.dumps(meta)

    _rewrite_header(synthetic_path, edit)
    with pytest.raises(PathFormatError, match="parameter spec describes 19"):
        LearningPath(synthetic_path)


def test_non_finite_weights_fail_validation(tmp_path: Path) -> None:
    writer = PathWriter(tmp_path / "nan.safetensors", {})
    writer.add(Snapshot([TaggedParam("a", "actor", torch.tensor([1.0, float("nan")]))],
                        0, 0, 0.0, 0.0))
    path = writer.finish()
    LearningPath(path)  # the header is fine ...
    assert check_file(path) == "non-finite values in 'weights'"  # ... the values are not


def test_not_a_learning_path(tmp_path: Path) -> None:
    other = tmp_path / "model.safetensors"
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3, np.float32)}, str(other))
    with pytest.raises(PathFormatError, match="not a tipl learning path"):
        read_header(other)


def test_dataset_filters_and_strictness(tmp_path: Path) -> None:
    write_synthetic_path(tmp_path / "a.safetensors", meta={"algorithm": "ppo"})
    write_synthetic_path(tmp_path / "sub" / "b.safetensors", meta={"algorithm": "sac"})
    (tmp_path / "bad.safetensors").write_bytes(b"\x01\x02")
    with pytest.raises(PathFormatError, match="bad.safetensors"):
        PathDataset(tmp_path)
    ds = PathDataset(tmp_path, strict=False)
    assert [lp.name for lp in ds] == ["a", "b"]
    assert len(ds.skipped) == 1
    assert [lp.name for lp in PathDataset(tmp_path, algorithm="sac", strict=False)] == ["b"]
    assert len(PathDataset(tmp_path, library="other", strict=False)) == 0
    assert [lp.name for lp in PathDataset(tmp_path / "sub" / "b.safetensors")] == ["b"]
    with pytest.raises(FileNotFoundError, match="no such folder or file"):
        PathDataset(tmp_path / "missing")
