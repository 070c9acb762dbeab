"""Built-in observer plugin: reports collection events through ``logging``.

Enable ``logging.DEBUG`` for ``tipl_opt.observers`` to see every snapshot.
"""

from __future__ import annotations

import logging
from typing import Any

from tipl_opt.hookspecs import hookimpl

logger = logging.getLogger(__name__)


@hookimpl
def tipl_on_snapshot(run: str, snapshot: Any) -> None:
    logger.debug(
        "%s: snapshot at env step %d (%d gradient steps), return %.2f +- %.2f",
        run,
        snapshot.env_steps,
        snapshot.grad_steps,
        snapshot.return_mean,
        snapshot.return_std,
    )


@hookimpl
def tipl_on_run_end(run: str, path: str, info: dict[str, Any]) -> None:
    logger.info("%s: wrote %s (%s)", run, path, info)


@hookimpl
def tipl_on_jump(report: Any) -> None:
    logger.debug("jump: %s", report)
