"""Weight-path predictors: the protocol, ``linear`` (baseline), ``pptb``, ``tipl``, ``trend``,
``average``."""

from tipl_opt.predictors.average import AveragePredictor
from tipl_opt.predictors.base import (
    BatchedTokenPredictor,
    CheckpointPredictor,
    Predictor,
    check_window,
)
from tipl_opt.predictors.linear import LinearPredictor
from tipl_opt.predictors.loading import default_predictor_path, load_checkpoint, load_predictor
from tipl_opt.predictors.pptb import PPTBPredictor
from tipl_opt.predictors.tipl import TIPLConfig, TIPLPredictor
from tipl_opt.predictors.tokens import WindowTokens, layer_groups, tokenize
from tipl_opt.predictors.trend import TrendPredictor

__all__ = [
    "AveragePredictor",
    "BatchedTokenPredictor",
    "CheckpointPredictor",
    "LinearPredictor",
    "PPTBPredictor",
    "Predictor",
    "TIPLConfig",
    "TIPLPredictor",
    "TrendPredictor",
    "WindowTokens",
    "check_window",
    "default_predictor_path",
    "layer_groups",
    "load_checkpoint",
    "load_predictor",
    "tokenize",
]
