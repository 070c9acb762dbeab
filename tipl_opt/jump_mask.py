"""Which weights a jump moves: the roles asked for, less the fixed parameters and, where the
acceptance config says so, the critic's value output.

A PPO critic ends in a value head (a last linear layer with one output row) whose bias carries
the value scale. Its path is the straightest of the network's (cosine 1.00 with the real move
8 snapshots on), but it does not go on in one direction everywhere: where the returns are
negative (SB3 PPO Reacher-v5, Pusher-v5) the bias falls from 0 for the first 20,000-24,000
env steps while the values fit the returns, then turns and rises with the policy; where an
alive bonus makes them positive (InvertedDoublePendulum-v5) it rises all run. Jumping the value
head overshoots at that turn. ``value_head`` (:class:`~tipl_opt.jumps.AcceptanceConfig`):

* ``"jump"``: the value head jumps with the rest of its role;
* ``"fixed"``: it never jumps;
* ``"falling"``: decided once, at the first jump: it is left out of that jump and every later
  one when its bias fell over that jump's window (the path of the gradient steps alone),
  else it jumps all run. Without a bias it jumps.

::

    mask = JumpMask(specs, acceptance)   # specs: ParamSpec per parameter, P weights in all
    mask.decide(window)                  # [n, P] the first jump's window, oldest first
    delta = delta * mask.mask            # [P] bool, or None when every weight moves
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from tipl_opt.jumps import AcceptanceConfig
from tipl_opt.paths.spec import ParamSpec, moving_mask, value_head

logger = logging.getLogger(__name__)


class JumpMask:
    """The flat bool mask [P] of the weights a jump moves, for ``specs`` under ``acceptance``
    (``roles``, ``fixed_params``, ``value_head``); :attr:`mask` is ``None`` when every weight
    moves. Raises ConfigError for a role or parameter name that matches nothing."""

    def __init__(self, specs: Sequence[ParamSpec], acceptance: AcceptanceConfig) -> None:
        self.specs = list(specs)
        self.acceptance = acceptance
        self.head_fixed: bool | None = {"jump": False, "fixed": True}.get(acceptance.value_head)
        """Whether the value head is out of the jumps; ``None`` while ``falling`` is undecided."""
        self.mask = self._build()

    def _build(self) -> torch.Tensor | None:
        return moving_mask(self.specs, self.acceptance.roles, self.acceptance.fixed_params,
                           fixed_value_head=bool(self.head_fixed))

    def _bias_column(self) -> int | None:
        """Column of the value head's bias in a flat snapshot, ``None`` without one."""
        head = set(value_head(self.specs))
        offset = 0
        for spec in self.specs:
            if spec.name in head and len(spec.shape) == 1:
                return offset
            offset += spec.numel
        return None

    def decide(self, window: torch.Tensor) -> None:
        """With ``value_head="falling"`` and nothing decided yet: decide on ``window``
        [n, P] (the first jump's, oldest first) and log the decision; otherwise nothing."""
        if self.head_fixed is not None:
            return
        column = self._bias_column()
        if column is None:
            self.head_fixed = False
            logger.info("TIPL: the critic has no value-head bias to read; its value head jumps")
            return
        first, last = float(window[0, column]), float(window[-1, column])
        self.head_fixed = last < first
        self.mask = self._build()
        logger.info("TIPL: the value head's bias went from %.3g to %.3g over the first window: "
                    "%s", first, last, "left out of every jump (its path falls, and turns "
                    "when the values have fit the returns)" if self.head_fixed
                    else "it jumps")

    @property
    def holds_head(self) -> bool:
        """Whether a jump now leaves the value head where it is."""
        return bool(self.head_fixed) and bool(value_head(self.specs))

    def state_dict(self) -> dict[str, Any]:
        return {"head_fixed": self.head_fixed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        fixed = state.get("head_fixed")
        if fixed is not None and not isinstance(fixed, bool):
            raise ValueError(f"head_fixed must be true, false or null, got {fixed!r}")
        if self.acceptance.value_head == "falling":
            self.head_fixed = fixed
        self.mask = self._build()
