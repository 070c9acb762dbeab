"""Entry point of the ``tipl-sb3`` plugin: registers the Stable-Baselines3 adapter.

Importing this module is cheap: Stable-Baselines3 is imported only when a run is checked or
trained.
"""

from __future__ import annotations

from typing import Any

from tipl_opt.hookspecs import hookimpl
from tipl_sb3.adapter import SB3Adapter


@hookimpl
def tipl_register_adapters(register: Any) -> None:
    register(SB3Adapter())
