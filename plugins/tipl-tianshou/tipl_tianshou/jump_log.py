"""Jump reports in Tianshou's own logger, next to its ``train/`` and ``update/`` scalars.

    logger = TensorboardLogger(SummaryWriter("runs/ppo"))
    log_jumps(factory_optimizers, logger, lambda: collector.collect_step)

Each jump of each TIPL optimizer is written with ``logger.write("tipl/env_step", step, data)``
(any Tianshou ``BaseLogger``: TensorBoard, W&B), as the scalars of
:func:`tipl_opt.events.jump_scalars` (``tipl/accepted``, ``tipl/fraction``,
``tipl/relative_size``, ``tipl/guard``, ``tipl/prediction_ms``, ``tipl/horizon``; with several
optimizers ``tipl/<part>/...``) plus the running ``jumps_accepted`` and ``jumps_tried``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from tipl_opt.events import HookHandle, jump_scalars
from tipl_opt.optimizer import TIPLOptimizer


def tensorboard_logger(folder: str | os.PathLike[str]) -> Any:
    """A Tianshou ``TensorboardLogger`` writing event files into ``folder``."""
    from tianshou.utils.logger.tensorboard import TensorboardLogger
    from torch.utils.tensorboard import SummaryWriter

    return TensorboardLogger(SummaryWriter(os.fspath(folder)))


def log_jumps(optimizers: Mapping[str, TIPLOptimizer], logger: Any,
              env_step: Callable[[], int]) -> list[HookHandle]:
    """Write every jump of ``optimizers`` (by part) to the Tianshou ``logger`` at the env step
    ``env_step()`` returns; ``handle.remove()`` on the returned handles stops it."""
    several = len(optimizers) > 1

    def hook(part: str | None) -> Callable[[TIPLOptimizer, Any], None]:
        prefix = f"{part}/" if part else ""

        def write(optimizer: TIPLOptimizer, report: Any) -> None:
            data: dict[str, float] = {key.removeprefix("tipl/"): value
                                      for key, value in jump_scalars(report, part).items()}
            data[f"{prefix}jumps_accepted"] = optimizer.counters["jumps_accepted"]
            data[f"{prefix}jumps_tried"] = optimizer.counters["jumps_tried"]
            logger.write("tipl/env_step", int(env_step()), data)

        return write

    return [opt.register_jump_hook(hook(part if several else None))
            for part, opt in optimizers.items()]
