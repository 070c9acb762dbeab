"""``WeightHistory``: the optimizer's rolling window of weight snapshots (bounded: K x P)."""

from __future__ import annotations

from typing import Any

import torch


class WeightHistory:
    """A ring buffer of the last ``capacity`` flattened weight vectors and their step counts.

    Memory is exactly ``capacity x size`` floats on ``device`` (plus ``capacity`` step counts).
    ``window()`` returns the snapshots oldest first.
    """

    def __init__(self, capacity: int, size: int, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity, self.size = capacity, size
        self.buffer = torch.zeros(capacity, size, device=device, dtype=dtype)
        self.steps = torch.zeros(capacity, dtype=torch.float64)
        self.count = 0  # snapshots pushed since the last reset
        self._head = 0  # next row to write

    def __len__(self) -> int:
        return min(self.count, self.capacity)

    @property
    def full(self) -> bool:
        return self.count >= self.capacity

    def push(self, vector: torch.Tensor, step: float) -> None:
        if vector.numel() != self.size:
            raise ValueError(f"snapshot has {vector.numel()} values, history holds {self.size}")
        self.buffer[self._head].copy_(vector.reshape(-1))
        self.steps[self._head] = float(step)
        self._head = (self._head + 1) % self.capacity
        self.count += 1

    def window(self) -> tuple[torch.Tensor, torch.Tensor]:
        """([n, P] snapshots, [n] steps), oldest first, n = len(self)."""
        n = len(self)
        order = [(self._head - n + i) % self.capacity for i in range(n)]
        return self.buffer[order], self.steps[order]

    def translate(self, move: torch.Tensor) -> None:
        """Add ``move`` [P] to every snapshot held (the path, moved as a whole)."""
        self.buffer += move.reshape(1, -1).to(self.buffer)

    def reset(self) -> None:
        self.count = 0
        self._head = 0

    def state_dict(self) -> dict[str, Any]:
        window, steps = self.window()
        return {"capacity": self.capacity, "size": self.size, "window": window.clone(),
                "steps": steps.clone(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if (state["capacity"], state["size"]) != (self.capacity, self.size):
            raise ValueError(f"history state is {state['capacity']} x {state['size']}, this "
                             f"history is {self.capacity} x {self.size}")
        self.reset()
        for row, step in zip(state["window"], state["steps"], strict=True):
            self.push(row.to(self.buffer), float(step))
        self.count = int(state["count"])
