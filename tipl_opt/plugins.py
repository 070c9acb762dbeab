"""The one plugin manager: built-in plugins and third-party ones, registered the same way.

Third-party plugins arrive through the entry-point group ``tipl_opt``. The environment variable
``TIPL_PLUGINS`` (a comma-separated list of plugin names) restricts which plugins load; unset or
empty means all of them. A name there that no installed plugin has is warned about (and shown by
``tipl plugins``).

Observer hooks (:data:`OBSERVER_HOOKS`) only listen: an implementation that raises is logged once
per plugin and skipped, so the other plugins still hear the event and training goes on.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from tipl_opt import hookspecs
from tipl_opt.errors import PluginNotFoundError

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "tipl_opt"

# Built-in plugins: (plugin name, module). They register exactly like third-party ones.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("tipl.log", "tipl_opt.observers"),
    ("tipl.predictors", "tipl_opt.predictors.builtin"),
    ("tipl.acceptance", "tipl_opt.acceptance"),
)

# Hooks that only observe: one that raises must never stop training (see _PluginManager).
OBSERVER_HOOKS: tuple[str, ...] = ("tipl_on_snapshot", "tipl_on_jump", "tipl_on_run_end")

# Adapters the project publishes, so a missing one can be named with the package to install.
KNOWN_ADAPTERS: dict[str, str] = {"sb3": "tipl-sb3", "tianshou": "tipl-tianshou"}


@dataclass
class PluginInfo:
    """One loaded plugin: where it comes from and what it registers."""

    name: str
    distribution: str
    version: str
    hooks: list[str] = field(default_factory=list)
    adapters: list[str] = field(default_factory=list)
    predictors: list[str] = field(default_factory=list)
    acceptance_rules: list[str] = field(default_factory=list)


_pm: pluggy.PluginManager | None = None
_origins: dict[str, tuple[str, str]] = {}
_missing: list[str] = []
_failed_observers: set[str] = set()


def _wanted() -> set[str] | None:
    """The plugin names ``TIPL_PLUGINS`` asks for; ``None`` when it is unset or empty (all)."""
    wanted = {w.strip() for w in os.environ.get("TIPL_PLUGINS", "").split(",") if w.strip()}
    return wanted or None


def _allowed(name: str) -> bool:
    wanted = _wanted()
    return wanted is None or name in wanted


def _guarded(function: Callable[..., Any], plugin: str, hook: str) -> Callable[..., Any]:
    """``function`` that logs (once per plugin) and swallows an exception instead of raising."""

    @functools.wraps(function)
    def observe(*args: Any) -> None:
        try:
            function(*args)
        except Exception as exc:  # an observer must never stop training
            if plugin in _failed_observers:
                logger.debug("plugin %r failed in %s again: %s", plugin, hook, exc)
                return
            _failed_observers.add(plugin)
            logger.warning("plugin %r failed in %s (ignored, training goes on; further "
                           "failures of this plugin are logged at debug level): %s: %s",
                           plugin, hook, type(exc).__name__, exc)

    return observe


class _PluginManager(pluggy.PluginManager):
    """A plugin manager whose observer hooks cannot raise.

    Every implementation of an :data:`OBSERVER_HOOKS` hook is wrapped when its plugin is
    registered (from an entry point, a built-in, or ``pm.register`` at run time), so
    ``pm.hook.tipl_on_snapshot(...)`` calls every observer even if one of them fails.
    """

    def register(self, plugin: object, name: str | None = None) -> str | None:
        plugin_name = super().register(plugin, name)
        if plugin_name is None:
            return None
        for hook_name in OBSERVER_HOOKS:
            for impl in getattr(self.hook, hook_name).get_hookimpls():
                if impl.plugin is plugin and not (impl.wrapper or impl.hookwrapper):
                    # pluggy calls ``impl.function(*args)``; the wrapper keeps the signature.
                    object.__setattr__(impl, "function",
                                       _guarded(impl.function, plugin_name, hook_name))
        return plugin_name


def get_plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide plugin manager, loading the plugins on first use."""
    global _pm
    if _pm is not None:
        return _pm
    pm = _PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    from tipl_opt import __version__

    known: set[str] = set()
    for name, module_name in BUILTIN_PLUGINS:
        known.add(name)
        if _allowed(name):
            pm.register(importlib.import_module(module_name), name=name)
            _origins[name] = ("tipl-opt", __version__)
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        known.add(ep.name)
        if not _allowed(ep.name) or pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken third-party plugin must not break the rest
            logger.warning("could not load plugin %r (%s): %s", ep.name, ep.value, exc)
            continue
        pm.register(plugin, name=ep.name)
        dist = ep.dist
        _origins[ep.name] = (dist.name, dist.version) if dist else ("?", "?")
    _missing[:] = sorted((_wanted() or set()) - known)
    if _missing:
        logger.warning("TIPL_PLUGINS names %s, which %s not installed; installed plugins: %s",
                       ", ".join(repr(m) for m in _missing),
                       "is" if len(_missing) == 1 else "are", ", ".join(sorted(known)))
    _pm = pm
    return pm


def missing_plugins() -> list[str]:
    """Plugin names ``TIPL_PLUGINS`` asks for that no installed plugin has."""
    get_plugin_manager()
    return list(_missing)


def reset_plugin_manager() -> None:
    """Forget the loaded plugins (the next call to :func:`get_plugin_manager` reloads them)."""
    global _pm
    _pm = None
    _origins.clear()
    _missing.clear()
    _failed_observers.clear()


def _collect(hook_name: str, plugin: object | None = None) -> list[tuple[Any, ...]]:
    items: list[tuple[Any, ...]] = []

    def register(*args: Any) -> None:
        items.append(args)

    pm = get_plugin_manager()
    hook = getattr(pm.hook, hook_name)
    if plugin is None:
        hook(register=register)
    else:
        impl = getattr(plugin, hook_name, None)
        if impl is not None:
            impl(register=register)
    return items


def adapters() -> dict[str, Any]:
    """All registered adapters by name (``{"sb3": <adapter>, ...}``)."""
    found: dict[str, Any] = {}
    for (adapter,) in _collect("tipl_register_adapters"):
        found.setdefault(adapter.name, adapter)
    return found


def get_adapter(name: str) -> Any:
    """Return the adapter registered as ``name`` or raise a message saying what to install."""
    found = adapters()
    if name in found:
        return found[name]
    if name in KNOWN_ADAPTERS:
        dist = KNOWN_ADAPTERS[name]
        raise PluginNotFoundError(
            f"The '{name}' adapter is not installed. Install it with `pip install {dist}` "
            f"(from a checkout: `pip install -e plugins/{dist}`)."
            + (" It is disabled by TIPL_PLUGINS." if os.environ.get("TIPL_PLUGINS") else "")
        )
    known = ", ".join(sorted(found)) or "none"
    raise PluginNotFoundError(f"Unknown library '{name}'. Installed adapters: {known}.")


def predictors() -> dict[str, Callable[..., Any]]:
    """All registered predictor factories by name."""
    found: dict[str, Callable[..., Any]] = {}
    for name, factory in _collect("tipl_register_predictors"):
        found.setdefault(name, factory)
    return found


def acceptance_rules() -> dict[str, Callable[..., Any]]:
    """All registered acceptance-rule factories by name."""
    found: dict[str, Callable[..., Any]] = {}
    for name, factory in _collect("tipl_register_acceptance_rules"):
        found.setdefault(name, factory)
    return found


def list_plugins() -> list[PluginInfo]:
    """Describe every loaded plugin: distribution, version, hooks and what it registers."""
    pm = get_plugin_manager()
    infos = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue
        dist, version = _origins.get(name, ("(registered at run time)", ""))
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        info = PluginInfo(name=name, distribution=dist, version=version, hooks=hooks)
        info.adapters = [a.name for (a,) in _collect("tipl_register_adapters", plugin)]
        info.predictors = [n for n, _ in _collect("tipl_register_predictors", plugin)]
        info.acceptance_rules = [n for n, _ in _collect("tipl_register_acceptance_rules",
                                                         plugin)]
        infos.append(info)
    return infos
