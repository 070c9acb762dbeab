"""Entry point of the ``tipl-tianshou`` plugin: registers the Tianshou adapter.

Importing this module is cheap: Tianshou itself is imported only when a run starts.
"""

from __future__ import annotations

from typing import Any

from tipl_opt.hookspecs import hookimpl
from tipl_tianshou.adapter import TianshouAdapter


@hookimpl
def tipl_register_adapters(register: Any) -> None:
    register(TianshouAdapter())
