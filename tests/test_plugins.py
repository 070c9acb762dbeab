"""Plugin discovery: built-ins, plugins registered at run time, TIPL_PLUGINS, missing adapters."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tipl_opt.adapters import Adapter, TrainSpec
from tipl_opt.errors import PluginNotFoundError
from tipl_opt.hookspecs import hookimpl
from tipl_opt.plugins import adapters, get_adapter, get_plugin_manager, list_plugins, predictors


class ToyAdapter:
    name = "toy"
    algorithms = ("walk",)

    def library_version(self) -> str:
        return "1.2.3"

    def check(self, spec: TrainSpec) -> None:
        pass

    def collect(self, spec: TrainSpec, on_snapshot: Any, on_progress: Any,
                tipl: Any = None) -> dict[str, Any]:
        return {}

    def evaluate_weights(self, spec: TrainSpec, params: Any, episodes: int
                         ) -> tuple[float, float]:
        return 0.0, 0.0


class ToyPlugin:
    @hookimpl
    def tipl_register_adapters(self, register: Any) -> None:
        register(ToyAdapter())

    @hookimpl
    def tipl_register_predictors(self, register: Any) -> None:
        register("toy-predictor", lambda **kw: "predictor")


def test_builtin_plugins_are_registered_like_third_party_ones() -> None:
    names = {info.name: info for info in list_plugins()}
    assert names["tipl.log"].distribution == "tipl-opt"
    assert "tipl_on_snapshot" in names["tipl.log"].hooks


def test_plugin_registered_in_a_test_is_discovered_and_unregistered() -> None:
    pm = get_plugin_manager()
    plugin = ToyPlugin()
    pm.register(plugin, name="toy")
    try:
        assert isinstance(get_adapter("toy"), Adapter)
        assert get_adapter("toy").library_version() == "1.2.3"
        assert "toy-predictor" in predictors()
        info = {i.name: i for i in list_plugins()}["toy"]
        assert info.adapters == ["toy"]
        assert info.predictors == ["toy-predictor"]
    finally:
        pm.unregister(plugin)
    assert "toy" not in adapters()


def test_installed_adapter_plugins_come_from_entry_points() -> None:
    infos = {i.name: i for i in list_plugins()}
    assert infos["sb3"].distribution == "tipl-sb3" and infos["sb3"].adapters == ["sb3"]
    assert infos["tianshou"].distribution == "tipl-tianshou"
    assert infos["tianshou"].adapters == ["tianshou"]


def test_tipl_plugins_restricts_what_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIPL_PLUGINS", "sb3")
    assert [i.name for i in list_plugins()] == ["sb3"]
    assert list(adapters()) == ["sb3"]


def test_missing_known_adapter_names_the_package_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIPL_PLUGINS", "tipl.log")
    with pytest.raises(PluginNotFoundError, match=r"pip install tipl-tianshou"):
        get_adapter("tianshou")


def test_unknown_adapter_lists_the_installed_ones() -> None:
    with pytest.raises(PluginNotFoundError, match="Unknown library 'rllib'.*sb3"):
        get_adapter("rllib")


def test_event_hooks_reach_every_observer() -> None:
    seen: list[str] = []

    class Observer:
        @hookimpl
        def tipl_on_run_end(self, run: str, path: str, info: dict[str, Any]) -> None:
            seen.append(run)

    pm = get_plugin_manager()
    observer = Observer()
    pm.register(observer)
    try:
        pm.hook.tipl_on_run_end(run="r1", path="p", info={})
    finally:
        pm.unregister(observer)
    assert seen == ["r1"]


class Raising:
    """An observer plugin whose every hook raises."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def tipl_on_snapshot(self, run: str, snapshot: Any) -> None:
        self.calls += 1
        raise RuntimeError("snapshot observer broke")

    @hookimpl
    def tipl_on_run_end(self, run: str, path: str, info: dict[str, Any]) -> None:
        self.calls += 1
        raise RuntimeError("run-end observer broke")

    @hookimpl
    def tipl_on_jump(self, report: Any) -> None:
        self.calls += 1
        raise RuntimeError("jump observer broke")


def test_a_raising_observer_is_logged_once_and_the_others_still_hear(
        caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    class Listener:
        @hookimpl
        def tipl_on_run_end(self, run: str, path: str, info: dict[str, Any]) -> None:
            seen.append(run)

        @hookimpl
        def tipl_on_snapshot(self, run: str, snapshot: Any) -> None:
            seen.append(f"snap-{run}")

    snapshot = SimpleNamespace(env_steps=0, grad_steps=0, return_mean=0.0, return_std=0.0)
    pm = get_plugin_manager()
    raising, listener = Raising(), Listener()
    pm.register(listener, name="listener")
    pm.register(raising, name="raising")  # registered last: pluggy calls it first
    try:
        with caplog.at_level("WARNING", logger="tipl_opt.plugins"):
            for i in range(3):
                pm.hook.tipl_on_run_end(run=f"r{i}", path="p", info={})
                pm.hook.tipl_on_snapshot(run=f"r{i}", snapshot=snapshot)
    finally:
        pm.unregister(raising)
        pm.unregister(listener)
    assert raising.calls == 6
    assert seen == ["r0", "snap-r0", "r1", "snap-r1", "r2", "snap-r2"]
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1  # once per plugin, not once per call
    assert "'raising'" in warnings[0].getMessage()
    assert "run-end observer broke" in warnings[0].getMessage()


def test_a_raising_jump_observer_never_stops_the_optimizer_step(
        caplog: pytest.LogCaptureFixture) -> None:
    import torch
    from torch import nn

    from tipl_opt.optimizer import TIPLOptimizer
    from tipl_opt.predictors import LinearPredictor

    pm = get_plugin_manager()
    raising = Raising()
    pm.register(raising, name="raising")
    try:
        param = nn.Parameter(torch.zeros(2))
        opt = TIPLOptimizer([param], LinearPredictor(2), base=torch.optim.SGD([param], lr=0.1),
                            config={"snapshot_every": 1})
        with caplog.at_level("WARNING"):
            for _ in range(5):
                opt.zero_grad()
                (param - 1).pow(2).sum().backward()
                opt.step()  # must not raise
    finally:
        pm.unregister(raising)
    assert raising.calls == opt.counters["jumps_tried"] >= 3
    assert opt.steps == 5
    assert sum("jump observer broke" in r.getMessage() for r in caplog.records) == 1


def test_tipl_plugins_naming_a_missing_plugin_warns(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    from typer.testing import CliRunner

    from tipl_opt.cli import app
    from tipl_opt.plugins import missing_plugins

    monkeypatch.setenv("TIPL_PLUGINS", "sb3,sb4")
    with caplog.at_level("WARNING", logger="tipl_opt.plugins"):
        assert [i.name for i in list_plugins()] == ["sb3"]
    assert missing_plugins() == ["sb4"]
    message = next(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "'sb4'" in message and "not installed" in message and "tipl.log" in message
    result = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"}).invoke(app, ["plugins"])
    assert result.exit_code == 0
    assert "TIPL_PLUGINS names 'sb4', which is not installed" in result.output


def test_tipl_plugins_naming_only_installed_plugins_is_silent(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from tipl_opt.plugins import missing_plugins

    monkeypatch.setenv("TIPL_PLUGINS", "sb3, tipl.log")
    with caplog.at_level("WARNING", logger="tipl_opt.plugins"):
        assert missing_plugins() == []
    assert not caplog.records
