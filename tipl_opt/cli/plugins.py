"""``tipl plugins``: what is installed and what each plugin registers."""

from __future__ import annotations

from rich.table import Table

from tipl_opt.cli.console import console, fail
from tipl_opt.plugins import list_plugins, missing_plugins


def plugins_command() -> None:
    """List every loaded plugin, its distribution and version, and what it registers.

    Set TIPL_PLUGINS=name1,name2 to load only those plugins.
    """
    table = Table(title="tipl-opt plugins")
    for col in ("plugin", "distribution", "version", "adapters", "predictors", "hooks"):
        table.add_column(col)
    for info in list_plugins():
        table.add_row(info.name, info.distribution, info.version, ", ".join(info.adapters),
                      ", ".join(info.predictors), ", ".join(info.hooks))
    console.print(table)
    for name in missing_plugins():
        fail(f"TIPL_PLUGINS names {name!r}, which is not installed: check the spelling (unset "
             "TIPL_PLUGINS to list every installed plugin) or install it")
