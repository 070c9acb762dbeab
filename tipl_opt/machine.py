"""Which machine made a result: seeded runs repeat exactly only on the same CPU model."""

from __future__ import annotations

import functools
import platform
from pathlib import Path


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else what :mod:`platform` says), e.g.
    ``"AMD EPYC x86_64"``. Floating-point kernels differ between CPU models, so a seeded RL run
    repeated on another model can leave its earlier path after a few updates."""
    name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    name = name or platform.processor()
    return f"{name} {platform.machine()}".strip() or "unknown"
