"""The documentation site builds, stays in step with the code, and its example plugin works."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import nn

import tipl_opt
from tipl_opt.jumps import JumpReport
from tipl_opt.optimizer import TIPLOptimizer
from tipl_opt.paths import Snapshot, TaggedParam
from tipl_opt.plugins import get_plugin_manager, list_plugins
from tipl_opt.predictors import LinearPredictor

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLE_PLUGIN = ROOT / "examples" / "plugin-jsonl-log"


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# -- the site -----------------------------------------------------------------------------------
@pytest.mark.skipif(not (_has("mkdocs") and _has("material")),
                    reason="mkdocs and mkdocs-material are not installed "
                    "(pip install 'mkdocs>=1.6' 'mkdocs-material>=9')")
def test_site_builds_in_strict_mode(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "plugins" / "index.html").is_file()
    assert not (tmp_path / "site" / "gen_cli.py").exists()


def _load_gen_cli() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli", DOCS / "gen_cli.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_up_to_date_with_the_app() -> None:
    expected = _load_gen_cli().render()
    assert (DOCS / "cli.md").read_text() == expected, (
        "docs/cli.md is out of date: run `python docs/gen_cli.py`")


def test_cli_reference_names_every_command() -> None:
    text = (DOCS / "cli.md").read_text()
    for command in ("train", "collect", "pretrain", "infer", "bench", "plugins", "paths show",
                    "paths check"):
        assert f"## `tipl {command}`" in text


# -- links --------------------------------------------------------------------------------------
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def relative_links(markdown: str) -> list[str]:
    """Targets of the markdown links that are neither external nor page-local anchors."""
    text = INLINE_CODE.sub("", FENCE.sub("", markdown))
    links = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        links.append(target)
    return links


def test_link_extraction_skips_code_urls_and_anchors() -> None:
    md = ("[a](x.md) [b](https://e.org) [c](#top) ![d](img/p.png \"t\")\n"
          "`[e](no.md)`\n```\n[f](no.md)\n```\n[g](y.md#part)")
    assert relative_links(md) == ["x.md", "img/p.png", "y.md#part"]


@pytest.mark.parametrize("page", [*sorted(p.name for p in DOCS.glob("*.md")), "README.md"])
def test_relative_links_point_to_existing_files(page: str) -> None:
    file = ROOT / page if page == "README.md" else DOCS / page
    missing = [t for t in relative_links(file.read_text())
               if not (file.parent / t.split("#", 1)[0]).exists()]
    assert not missing, f"{file.relative_to(ROOT)} links to missing files: {missing}"


# -- pages in step with the code ----------------------------------------------------------------
def test_api_page_covers_everything_exported() -> None:
    text = (DOCS / "api.md").read_text()
    missing = [name for name in tipl_opt.__all__ if f"`{name}" not in text]
    assert not missing, f"docs/api.md does not mention: {missing}"


def test_home_page_shows_the_readme_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    index = (DOCS / "index.md").read_text()
    commands = [line for line in readme.splitlines() if line.startswith("pip install torch")]
    assert len(commands) == 2
    for command in commands:
        assert command in index


def test_plugin_page_shows_the_example_hooks_as_written() -> None:
    source = (EXAMPLE_PLUGIN / "tipl_jsonl_log" / "__init__.py").read_text()
    page = (DOCS / "plugins.md").read_text()
    for hook in ("tipl_on_snapshot", "tipl_on_run_end", "tipl_on_jump"):
        block = source[source.index(f"@hookimpl\ndef {hook}"):]
        block = block[: block.find("\n\n\n")] if "\n\n\n" in block else block.rstrip()
        assert block in page, f"docs/plugins.md shows another {hook} than the example's"


# -- the example plugin -------------------------------------------------------------------------
@pytest.fixture
def jsonl_log(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """The example plugin, imported from its folder (not installed) and registered."""
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN))
    monkeypatch.delitem(sys.modules, "tipl_jsonl_log", raising=False)
    module = importlib.import_module("tipl_jsonl_log")
    pm = get_plugin_manager()
    pm.register(module, name="jsonl-log")
    try:
        yield module
    finally:
        pm.unregister(module)
        sys.modules.pop("tipl_jsonl_log", None)


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_example_plugin_writes_one_json_line_per_event(
        jsonl_log: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    monkeypatch.setenv("TIPL_JSONL_LOG", str(log))
    pm = get_plugin_manager()
    snapshot = Snapshot(params=[TaggedParam("actor.w", "actor", torch.zeros(2, 3)),
                                TaggedParam("critic.b", "critic", torch.zeros(4))],
                        env_steps=1000, grad_steps=40, return_mean=float("nan"),
                        return_std=float("nan"), eval_steps=50)
    pm.hook.tipl_on_snapshot(run="toy-ppo-Toy-v0-s0", snapshot=snapshot)
    pm.hook.tipl_on_run_end(run="toy-ppo-Toy-v0-s0", path="data/toy.safetensors",
                            info={"snapshots": 3, "params": 10, "wall_time_s": 1.5})
    report = JumpReport(step=300, horizon=4, fraction=0.5, relative_size=0.01, guard=0.015,
                        accepted=True, shortened=True, prediction_ms=2.0)
    pm.hook.tipl_on_jump(report=report)

    snap, end, jump = read_lines(log)
    assert {k: v for k, v in snap.items() if k != "time"} == {
        "event": "snapshot", "run": "toy-ppo-Toy-v0-s0", "env_steps": 1000, "grad_steps": 40,
        "eval_steps": 50, "return_mean": None, "return_std": None, "num_params": 10}
    assert end["event"] == "run_end" and end["path"] == "data/toy.safetensors"
    assert end["info"] == {"snapshots": 3, "params": 10, "wall_time_s": 1.5}
    assert {k: v for k, v in jump.items() if k != "time"} == {"event": "jump",
                                                               **report.to_dict()}
    assert all(isinstance(line["time"], float) for line in (snap, end, jump))


def test_example_plugin_does_nothing_without_the_variable(
        jsonl_log: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TIPL_JSONL_LOG", raising=False)
    monkeypatch.chdir(tmp_path)
    get_plugin_manager().hook.tipl_on_jump(report=JumpReport(
        step=1, horizon=1, fraction=0.0, relative_size=0.1, guard=float("nan"), accepted=False,
        shortened=False, prediction_ms=1.0, reason="non-finite prediction"))
    assert list(tmp_path.iterdir()) == []


def test_example_plugin_logs_the_jumps_of_a_real_optimizer(
        jsonl_log: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    monkeypatch.setenv("TIPL_JSONL_LOG", str(log))
    torch.manual_seed(0)
    net = nn.Linear(3, 1)
    opt = TIPLOptimizer(net, LinearPredictor(context=2), config={"snapshot_every": 1}, lr=0.01)
    x = torch.randn(16, 3)
    for _ in range(4):  # snapshot at every step; K = 2, so a jump at steps 2, 3 and 4
        opt.zero_grad()
        net(x).pow(2).mean().backward()
        opt.step()
    lines = read_lines(log)
    assert [line["step"] for line in lines] == [2, 3, 4]
    assert all(line["event"] == "jump" and line["accepted"] for line in lines)
    assert lines[-1]["guard"] is None  # no guard: NaN is written as null


def test_example_plugin_is_listed_with_its_hooks(jsonl_log: ModuleType) -> None:
    info = {i.name: i for i in list_plugins()}["jsonl-log"]
    assert info.hooks == ["tipl_on_jump", "tipl_on_run_end", "tipl_on_snapshot"]


def test_example_plugin_declares_its_entry_point() -> None:
    import tomllib

    project = tomllib.loads((EXAMPLE_PLUGIN / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["tipl_opt"] == {"jsonl-log": "tipl_jsonl_log"}
