"""Parsers for the flag values several commands share."""

from __future__ import annotations

import json
from typing import Any

import typer


def parse_ints(value: str | None, example: str = "64,64") -> tuple[int, ...] | None:
    """``"64,64"`` -> ``(64, 64)``; ``None`` stays ``None`` (flag not given)."""
    if value is None:
        return None
    try:
        numbers = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError as exc:
        raise typer.BadParameter(f"expected comma-separated integers like {example}, "
                                 f"got {value!r}") from exc
    if not numbers or min(numbers) < 1:
        raise typer.BadParameter(f"expected positive integers like {example}, got {value!r}")
    return numbers


def parse_hyperparams(items: list[str], flag: str = "--hp") -> dict[str, Any]:
    """``["n_steps=512", "gamma=0.98"]`` -> ``{"n_steps": 512, "gamma": 0.98}`` (JSON values,
    else strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=flag)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


EXECUTOR_HELP = "Where runs train: process (this machine) or ray (Ray tasks; the ray extra)."
ADDRESS_HELP = ("Ray cluster to join with --executor ray (auto, HOST:6379); default: a local "
                "Ray with --workers CPUs.")
TENSORBOARD_HELP = ("Folder for TensorBoard events: one subfolder per run with the library's "
                    "own scalars and the tipl/ jump reports.")
ENTROPY_LIMIT_HELP = ("Largest drop of the policy's entropy (nats per action dimension) a "
                      "PPO/A2C jump may cause (default 0.02; 10 turns the check off).")
VALUE_FIT_LIMIT_HELP = ("Largest ratio of the value head's RMS error on the newest returns "
                        "after and before a PPO/A2C jump (1: no rise; default: not checked).")
VALUE_GRAD_LIMIT_HELP = ("Largest ratio of the norm of the value head's gradient on the newest "
                         "returns after and before a PPO/A2C jump (1: no rise; default 2 for "
                         "PPO, not checked for A2C; 1e9 turns it off).")
VALUE_LIMIT_HELP = ("Largest relative change of the value head a PPO/A2C jump may cause "
                    "(default 0.1).")
