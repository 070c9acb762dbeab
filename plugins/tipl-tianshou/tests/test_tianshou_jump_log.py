"""Jump reports in Tianshou's own logger: a TensorboardLogger gets the tipl/ scalars of every jump,
read back with TensorBoard's reader."""

from __future__ import annotations

from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from tipl_opt.optimizer import TIPLOptimizer
from tipl_tianshou.jump_log import log_jumps, tensorboard_logger


def test_every_jump_is_written_to_a_tianshou_tensorboard_logger(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    optimizer = TIPLOptimizer(net, "linear", lr=1e-2,
                              config={"snapshot_every": 2, "context": 3, "horizon": 1})
    board = tensorboard_logger(tmp_path)
    steps = [0]
    log_jumps({"policy": optimizer}, board, lambda: steps[0])
    x = torch.randn(16, 3)
    for step in range(30):
        steps[0] = 100 * step
        optimizer.zero_grad()
        net(x).pow(2).mean().backward()
        optimizer.step()
    board.writer.close()
    tried = optimizer.counters["jumps_tried"]
    assert tried >= 2
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"tipl/accepted", "tipl/fraction", "tipl/relative_size", "tipl/guard",
            "tipl/prediction_ms", "tipl/horizon", "tipl/jumps_tried"} <= tags
    written = events.Scalars("tipl/jumps_tried")
    assert [e.value for e in written] == list(range(1, tried + 1))
    assert all(e.step % 100 == 0 and e.step > 0 for e in written)
