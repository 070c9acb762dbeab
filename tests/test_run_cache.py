"""Finished runs of `tipl train` / `tipl bench` are kept and reused: a comparison resumes."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from tipl_opt import run_cache
from tipl_opt.errors import ConfigError
from tipl_opt.train import TrainConfig, make_tasks, run_training


def _config(out: Path, steps: int = 768) -> TrainConfig:
    return TrainConfig(lib="sb3", algo="ppo", env="CartPole-v1", steps=steps, every=256,
                       predictor="linear", compare=True, eval_episodes=1, hidden_sizes=(8,),
                       hyperparams={"n_steps": 128, "batch_size": 64}, out=out)


def test_a_finished_comparison_is_reused_not_trained_again(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    first = run_training(cfg)
    assert first.reused == 0
    files = sorted(p.name for p in (tmp_path / "runs").glob("*.json"))
    assert files == ["sb3-ppo-CartPole-v1-s0-base.json", "sb3-ppo-CartPole-v1-s0-tipl-linear.json"]
    from tipl_opt.machine import cpu_model

    kept = json.loads((tmp_path / "runs" / files[0]).read_text())
    assert kept["machine"] == cpu_model() and cpu_model() != "unknown"  # which CPU ran it
    again = run_training(cfg)
    assert again.reused == 2
    for name, variant in first.variants.items():
        [old], [new] = variant.runs, again.variants[name].runs
        assert new.skipped and not old.skipped
        assert new.curve == old.curve and new.jumps == old.jumps
        assert new.jump_steps == old.jump_steps
        assert new.wall_time_s == old.wall_time_s


def test_other_settings_or_a_corrupt_file_train_the_run_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = _config(tmp_path)
    run_training(cfg)
    longer = _config(tmp_path, steps=1024)  # same run names, another budget
    [(task, _), _] = make_tasks(longer, longer.variants())
    assert run_cache.load(tmp_path, task) is None
    [(task, _), _] = make_tasks(cfg, cfg.variants())
    file = run_cache.cache_file(tmp_path, task)
    assert run_cache.load(tmp_path, task) is not None
    file.write_text(file.read_text()[:50])  # truncated
    assert run_cache.load(tmp_path, task) is None
    assert "Ignoring unreadable run result" in caplog.text
    summary = run_training(cfg)
    assert summary.reused == 1  # only the intact one
    assert json.loads(file.read_text())["format"] == "tipl-run-result"  # rewritten whole


def test_a_reused_run_without_its_requested_learning_path_is_trained_again(
        tmp_path: Path) -> None:
    run_training(_config(tmp_path))
    with_paths = _config(tmp_path).model_copy(update={"save_paths": True})
    summary = run_training(with_paths)
    assert summary.reused == 0  # the earlier runs wrote no learning path
    assert len(list((tmp_path / "paths").glob("*.safetensors"))) == 2
    assert run_training(with_paths).reused == 2


def test_unreadable_shapes_are_ignored_and_write_errors_do_not_stop_a_run(
        tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    [(task, _), _] = make_tasks(cfg, cfg.variants())
    file = run_cache.cache_file(tmp_path, task)
    file.parent.mkdir(parents=True)
    for text in ("[]", '{"format": "tipl-run-result", "version": 1, "fingerprint": null}'):
        file.write_text(text)
        assert run_cache.load(tmp_path, task) is None
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "runs").write_text("a file where the folder should be")
    result = run_training(cfg)  # trains fine into tmp_path
    assert run_cache.store(blocked, task, result.variants["base"].runs[0]) is None


def test_fingerprint_follows_the_predictor_files_and_normalises_jump_settings(
        tmp_path: Path) -> None:
    from tipl_opt.predictors import default_predictor_path

    source = default_predictor_path()
    assert source is not None
    ckpt = tmp_path / "my-small"  # "-s" in the name must not be read as a seed
    shutil.copytree(source, ckpt)
    cfg = _config(tmp_path / "out").model_copy(update={"predictor": str(ckpt), "steps": 512})
    [_, (task, _)] = make_tasks(cfg, cfg.variants())
    before = run_cache.fingerprint(task)
    config = json.loads((ckpt / "config.json").read_text())
    config["note"] = "retrained"
    (ckpt / "config.json").write_text(json.dumps(config))
    run_cache._checkpoint_digest.cache_clear()
    assert run_cache.fingerprint(task) != before
    a = task.tipl.model_copy(update={"jump": {"scale": 2}}) if task.tipl else None
    b = task.tipl.model_copy(update={"jump": {"scale": 2.0}}) if task.tipl else None
    assert run_cache.fingerprint(dataclasses.replace(task, tipl=a)) == run_cache.fingerprint(
        dataclasses.replace(task, tipl=b))
    summary = run_training(cfg)
    assert [r.seed for v in summary.variants.values() for r in v.runs] == [0, 0]
    assert json.loads((tmp_path / "out" / "results.json").read_text())["variants"]


def test_fingerprint_of_a_tipl_run_follows_the_adapter_defaults(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tipl_opt.adapters import attachment

    cfg = _config(tmp_path)
    [(base, _), (tipl, _)] = make_tasks(cfg, cfg.variants())
    before = run_cache.fingerprint(base), run_cache.fingerprint(tipl)
    # another algorithm's default changing leaves a PPO run as it was
    monkeypatch.setitem(attachment.JUMPS_OFF_BY_DEFAULT, "sac", "measured harm")
    assert run_cache.fingerprint(tipl) == before[1]
    monkeypatch.setattr(attachment, "DEFAULT_JUMP_EVERY", 3)
    # a kept TIPL run from before the default changed is trained again; a base run is not
    assert run_cache.fingerprint(base) == before[0]
    assert run_cache.fingerprint(tipl) != before[1]
    monkeypatch.setattr(attachment, "DEFAULT_JUMP_EVERY", 2)
    assert run_cache.fingerprint(tipl) == before[1]
    monkeypatch.setitem(attachment.JUMPS_OFF_BY_DEFAULT, "ppo", "measured harm")
    assert run_cache.fingerprint(tipl) != before[1]


def test_the_entropy_limit_in_effect_decides_the_fingerprint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tipl_opt.adapters import attachment

    cfg = _config(tmp_path)
    [_, (tipl, _)] = make_tasks(cfg, cfg.variants())
    assert tipl.tipl is not None and tipl.tipl.entropy_limit is None
    with_check = run_cache.fingerprint(tipl)  # the default entropy check, 0.02
    limited = dataclasses.replace(tipl, tipl=tipl.tipl.model_copy(update={"entropy_limit": 0.02}))
    # the limit in effect counts, not how it was given: a run kept with --entropy-limit 0.02
    # is the same run as one taking 0.02 by default
    assert run_cache.fingerprint(limited) == with_check
    monkeypatch.setattr(attachment, "ENTROPY_LIMIT", None)  # as before the check existed
    before = run_cache.fingerprint(tipl)
    assert before != with_check
    # an explicit limit does not depend on the default
    assert run_cache.fingerprint(limited) == with_check


def test_train_refuses_an_output_folder_it_cannot_write(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("not a folder")
    with pytest.raises(ConfigError, match="not writable"):
        run_training(_config(tmp_path / "taken" / "out"))


def test_a_run_without_the_value_fit_check_keeps_the_fingerprint_it_had(
        tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    [_, (tipl, _)] = make_tasks(cfg, cfg.variants())
    assert tipl.tipl is not None and tipl.tipl.value_fit_limit is None
    plain = run_cache.fingerprint(tipl)
    fitted = dataclasses.replace(tipl, tipl=tipl.tipl.model_copy(update={"value_fit_limit": 1.0}))
    assert run_cache.fingerprint(fitted) != plain
    # unchecked, the field is left out: runs kept before it existed are reused
    assert "value_fit_limit" in tipl.tipl.model_dump()
    assert run_cache.fingerprint(dataclasses.replace(
        tipl, tipl=tipl.tipl.model_copy(update={"value_fit_limit": None}))) == plain


def test_the_jump_settings_digested_are_the_ones_given(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    [_, (tipl, _)] = make_tasks(cfg, cfg.variants())
    assert tipl.tipl is not None

    def with_jump(jump: dict[str, object]) -> str:
        assert tipl.tipl is not None
        return run_cache.fingerprint(dataclasses.replace(
            tipl, tipl=tipl.tipl.model_copy(update={"jump": jump})))

    plain = with_jump({})
    assert with_jump({"acceptance": {}}) == plain  # an empty section gives nothing
    assert with_jump({"fixed_params": "log_std"}) == with_jump(
        {"acceptance": {"fixed_params": ["log_std"]}}) != plain
