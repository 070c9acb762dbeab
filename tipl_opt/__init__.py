"""tipl-opt: optimise deep RL policy weights as trajectory modelling.

Collect learning paths from real RL trainings, pretrain a predictor of future weights, and let
an optimizer jump ahead along the path.

The names below are imported on first use (PEP 562), so ``import tipl_opt`` and ``tipl --help``
do not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from tipl_opt.acceptance import (
        AcceptanceRule,
        Backtracking,
        Candidate,
        Decision,
        ScoredGuard,
        SplitBacktracking,
        StepSearch,
    )
    from tipl_opt.errors import (
        ConfigError,
        IncompatibleEnvError,
        PathFormatError,
        PluginNotFoundError,
        TiplError,
    )
    from tipl_opt.guard import (
        ActionDistanceGuard,
        EntropyDropGuard,
        GreedyActionGuard,
        JumpGuard,
        KLGuard,
        LossGuard,
        QChangeGuard,
    )
    from tipl_opt.history import WeightHistory
    from tipl_opt.jumps import (
        AcceptanceConfig,
        JumpConfig,
        JumpReport,
        JumpTally,
        PredictionConfig,
        ScheduleConfig,
    )
    from tipl_opt.optimizer import TIPLOptimizer
    from tipl_opt.paths import (
        LearningPath,
        ParamSpec,
        PathDataset,
        PathWriter,
        Snapshot,
        TaggedParam,
    )
    from tipl_opt.persistence import PersistenceMeter, RolePersistence
    from tipl_opt.plugins import get_plugin_manager
    from tipl_opt.predictors import (
        LinearPredictor,
        Predictor,
        TIPLConfig,
        TIPLPredictor,
        load_predictor,
    )
    from tipl_opt.schedule import CadenceSchedule, Schedule

_EXPORTS: dict[str, str] = {
    "AcceptanceConfig": "tipl_opt.jumps",
    "AcceptanceRule": "tipl_opt.acceptance",
    "ActionDistanceGuard": "tipl_opt.guard",
    "Backtracking": "tipl_opt.acceptance",
    "CadenceSchedule": "tipl_opt.schedule",
    "Candidate": "tipl_opt.acceptance",
    "ConfigError": "tipl_opt.errors",
    "Decision": "tipl_opt.acceptance",
    "GreedyActionGuard": "tipl_opt.guard",
    "IncompatibleEnvError": "tipl_opt.errors",
    "JumpConfig": "tipl_opt.jumps",
    "JumpGuard": "tipl_opt.guard",
    "JumpReport": "tipl_opt.jumps",
    "JumpTally": "tipl_opt.jumps",
    "KLGuard": "tipl_opt.guard",
    "EntropyDropGuard": "tipl_opt.guard",
    "LearningPath": "tipl_opt.paths",
    "LinearPredictor": "tipl_opt.predictors",
    "LossGuard": "tipl_opt.guard",
    "ParamSpec": "tipl_opt.paths",
    "PathDataset": "tipl_opt.paths",
    "PathFormatError": "tipl_opt.errors",
    "PathWriter": "tipl_opt.paths",
    "PersistenceMeter": "tipl_opt.persistence",
    "PluginNotFoundError": "tipl_opt.errors",
    "PredictionConfig": "tipl_opt.jumps",
    "Predictor": "tipl_opt.predictors",
    "QChangeGuard": "tipl_opt.guard",
    "RolePersistence": "tipl_opt.persistence",
    "Schedule": "tipl_opt.schedule",
    "ScheduleConfig": "tipl_opt.jumps",
    "ScoredGuard": "tipl_opt.acceptance",
    "Snapshot": "tipl_opt.paths",
    "SplitBacktracking": "tipl_opt.acceptance",
    "StepSearch": "tipl_opt.acceptance",
    "TIPLConfig": "tipl_opt.predictors",
    "TIPLOptimizer": "tipl_opt.optimizer",
    "TIPLPredictor": "tipl_opt.predictors",
    "TaggedParam": "tipl_opt.paths",
    "TiplError": "tipl_opt.errors",
    "WeightHistory": "tipl_opt.history",
    "get_plugin_manager": "tipl_opt.plugins",
    "load_predictor": "tipl_opt.predictors",
}
"""Public name -> the module that defines it."""


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tipl_opt' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AcceptanceConfig",
    "AcceptanceRule",
    "ActionDistanceGuard",
    "Backtracking",
    "CadenceSchedule",
    "Candidate",
    "ConfigError",
    "Decision",
    "EntropyDropGuard",
    "GreedyActionGuard",
    "IncompatibleEnvError",
    "JumpConfig",
    "JumpGuard",
    "JumpReport",
    "JumpTally",
    "KLGuard",
    "LearningPath",
    "LinearPredictor",
    "LossGuard",
    "ParamSpec",
    "PathDataset",
    "PathFormatError",
    "PathWriter",
    "PersistenceMeter",
    "PluginNotFoundError",
    "PredictionConfig",
    "Predictor",
    "QChangeGuard",
    "RolePersistence",
    "Schedule",
    "ScheduleConfig",
    "ScoredGuard",
    "Snapshot",
    "SplitBacktracking",
    "StepSearch",
    "TIPLConfig",
    "TIPLOptimizer",
    "TIPLPredictor",
    "TaggedParam",
    "TiplError",
    "WeightHistory",
    "__version__",
    "get_plugin_manager",
    "load_predictor",
]
