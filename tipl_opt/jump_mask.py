"""Which weights a jump moves: the roles asked for, less the fixed parameters and, where the
acceptance config says so, the critic's value output.

A PPO critic ends in a value head (a last linear layer with one output row) whose bias carries
the value scale; its path is the straightest of the network's (cosine 1.00 with the real move
8 snapshots on). Whether extrapolating it pays is a property of the task, not of its path:
on SB3 PPO Reacher-v5 leaving it out of the jumps removed the return the jumps cost, on
InvertedDoublePendulum-v5 and Pusher-v5 it gave up much of their gain (docs/benchmarks.md,
"The value head's jumps"). ``value_head`` (:class:`~tipl_opt.jumps.AcceptanceConfig`):
``"jump"`` (default), the value head jumps with the rest of its role; ``"fixed"``, it never
jumps.

::

    mask = JumpMask(specs, acceptance)   # specs: ParamSpec per parameter, P weights in all
    delta = delta * mask.mask            # [P] bool, or None when every weight moves
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tipl_opt.jumps import AcceptanceConfig
from tipl_opt.paths.spec import ParamSpec, moving_mask, value_head


class JumpMask:
    """The flat bool mask [P] of the weights a jump moves, for ``specs`` under ``acceptance``
    (``roles``, ``fixed_params``, ``value_head``); :attr:`mask` is ``None`` when every weight
    moves. Raises ConfigError for a role or parameter name that matches nothing."""

    def __init__(self, specs: Sequence[ParamSpec], acceptance: AcceptanceConfig) -> None:
        fixed = acceptance.value_head == "fixed"
        self.mask: torch.Tensor | None = moving_mask(specs, acceptance.roles,
                                                     acceptance.fixed_params,
                                                     fixed_value_head=fixed)
        self.holds_head = fixed and bool(value_head(specs))
        """Whether a jump leaves a value head where it is."""
