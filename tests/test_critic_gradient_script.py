"""benchmarks/critic_gradient.py: the critic's and the actor's gradient norms under PPO's clip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_critic_gradient_records_the_clip_and_each_parts_gradient_per_seed(
        tmp_path: Path) -> None:
    out = tmp_path / "cg"
    script = [sys.executable, str(ROOT / "benchmarks" / "critic_gradient.py"), "--env",
              "CartPole-v1", "--seeds", "1", "--steps", "768", "--every", "256", "--workers",
              "1", "--variant", "checked:value_grad_limit=1,scale=2", "--out", str(out)]
    result = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    doc = json.loads((out / "critic_gradient.json").read_text())
    assert set(doc["runs"]) == {"base", "tipl", "checked"}
    # TIPLSetup fields set the setup, the rest are jump settings
    assert doc["variants"] == {"tipl": {},
                               "checked": {"value_grad_limit": 1, "jump": {"scale": 2}}}
    base = doc["runs"]["base"]["0"]
    assert [row["env_steps"] for row in base] == [256, 512, 768]
    for row in base:
        assert 0 < row["clip"] <= 1
        # the clipped gradient's norm is at most max_grad_norm, so the actor's share too
        assert 0 < row["actor_step"] <= 0.5 + 1e-6
        assert row["actor"] > 0 and row["body"] > 0 and row["head"] > 0 and row["head_norm"] > 0
    # 3 rollouts, no jump yet (a window takes 8 snapshots): TIPL trains exactly as the base
    assert doc["runs"]["tipl"]["0"] == base == doc["runs"]["checked"]["0"]
    assert (out / "critic_gradient.png").stat().st_size > 0
    assert "actor step" in result.stdout
