"""The collect configuration: TOML file, flags on top, clear errors for typos."""

from __future__ import annotations

from pathlib import Path

import pytest

from tipl_opt.collect import load_config
from tipl_opt.errors import ConfigError


def test_flags_override_the_file(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('lib = "tianshou"\nalgo = "sac"\nenv = "Pendulum-v1"\nsteps = 3000\n'
                    "hidden_sizes = [32, 32]\n[hyperparams]\nlr = 0.001\n")
    cfg = load_config(file, {"steps": 5000, "algo": None})
    assert (cfg.lib, cfg.algo, cfg.env, cfg.steps) == ("tianshou", "sac", "Pendulum-v1", 5000)
    assert cfg.hidden_sizes == (32, 32)
    assert cfg.hyperparams == {"lr": 0.001}
    spec = cfg.train_spec(3)
    assert spec.seed == cfg.seed + 3 and spec.total_steps == 5000


def test_hp_flags_add_to_the_files_hyperparams_key_by_key(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("[hyperparams]\nlr = 0.001\nn_steps = 512\n")
    cfg = load_config(file, {"hyperparams": {"n_steps": 256, "batch_size": 64}})
    assert cfg.hyperparams == {"lr": 0.001, "n_steps": 256, "batch_size": 64}
    assert load_config(None, {"hyperparams": {"n_steps": 256}}).hyperparams == {"n_steps": 256}
    assert load_config(file, {"hyperparams": None}).hyperparams == {"lr": 0.001, "n_steps": 512}


def test_collect_table_is_accepted(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('[collect]\nruns = 3\n')
    assert load_config(file, {}).runs == 3


def test_a_typo_in_a_key_names_the_key_and_the_fix(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("stepz = 100\n")
    with pytest.raises(ConfigError, match=r"unknown key 'stepz' \(did you mean 'steps'\?\)"):
        load_config(file, {})


def test_bad_values_and_bad_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'runs'"):
        load_config(None, {"runs": 0})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml", {})
    broken = tmp_path / "broken.toml"
    broken.write_text("steps = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken, {})
