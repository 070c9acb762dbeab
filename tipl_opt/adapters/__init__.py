"""What an RL-library adapter plugin provides, and helpers adapters share."""

from tipl_opt.adapters.base import Adapter, ProgressSink, SnapshotSink, TIPLSetup, TrainSpec
from tipl_opt.adapters.evaluation import (
    GradStepCounter,
    SnapshotClock,
    check_env_id,
    evaluate,
    make_env,
    require_action_space,
)

__all__ = [
    "Adapter",
    "GradStepCounter",
    "ProgressSink",
    "SnapshotClock",
    "SnapshotSink",
    "TIPLSetup",
    "TrainSpec",
    "check_env_id",
    "evaluate",
    "make_env",
    "require_action_space",
]
