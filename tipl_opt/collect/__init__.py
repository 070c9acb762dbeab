"""Collect learning paths by running independent RL trainings through adapter plugins."""

from tipl_opt.collect.config import CollectConfig, load_config
from tipl_opt.collect.executor import (
    Executor,
    InlineExecutor,
    Outcome,
    ProcessExecutor,
    make_executor,
)
from tipl_opt.collect.runner import (
    CollectSummary,
    RunEvent,
    RunResult,
    RunTask,
    collect,
    plan,
    run_name,
    run_one,
)

__all__ = [
    "CollectConfig",
    "CollectSummary",
    "Executor",
    "InlineExecutor",
    "Outcome",
    "ProcessExecutor",
    "RunEvent",
    "RunResult",
    "RunTask",
    "collect",
    "load_config",
    "make_executor",
    "plan",
    "run_name",
    "run_one",
]
