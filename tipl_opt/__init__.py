"""tipl-opt: optimise deep RL policy weights as trajectory modelling.

Collect learning paths from real RL trainings, pretrain a predictor of future weights, and let
an optimizer jump ahead along the path.
"""

__version__ = "0.1.0"

from tipl_opt import events as _events
from tipl_opt.acceptance import (
    AcceptanceRule,
    Backtracking,
    Candidate,
    Decision,
    ScoredGuard,
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
from tipl_opt.plugins import get_plugin_manager
from tipl_opt.predictors import (
    LinearPredictor,
    Predictor,
    TIPLConfig,
    TIPLPredictor,
    load_predictor,
)
from tipl_opt.schedule import CadenceSchedule, Schedule

# Every TIPLOptimizer's jump reports reach the plugins' ``tipl_on_jump`` hook through this bridge.
_events.register_global_jump_hook(_events.forward_to_plugins)

__all__ = [
    "AcceptanceConfig",
    "AcceptanceRule",
    "ActionDistanceGuard",
    "Backtracking",
    "CadenceSchedule",
    "Candidate",
    "ConfigError",
    "Decision",
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
    "PluginNotFoundError",
    "PredictionConfig",
    "Predictor",
    "QChangeGuard",
    "Schedule",
    "ScheduleConfig",
    "ScoredGuard",
    "Snapshot",
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
