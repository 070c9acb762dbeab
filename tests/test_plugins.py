"""Plugin discovery: built-ins, plugins registered at run time, TIPL_PLUGINS, missing adapters."""

from __future__ import annotations

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
