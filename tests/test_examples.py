"""The plain torch example runs as a user would run it (the RL examples are run by the
adapter plugins' test suites)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_supervised_torch_example_runs_and_jumps() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "supervised_torch.py"),
                             "--steps", "400"], capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "TIPL jumps: {'snapshots'" in result.stdout
    assert "'jumps_tried': 2" in result.stdout  # 400 steps / 25 per snapshot / 8 per window
    assert "final loss after 400 steps: Adam" in result.stdout
