"""Pretraining a TIPL predictor: windows streamed from learning paths, AdamW, held-out runs."""

from tipl_opt.pretrain.metrics import horizon_errors, relative_report
from tipl_opt.pretrain.trainer import PretrainConfig, PretrainResult, Progress, pretrain, split_runs
from tipl_opt.pretrain.windows import Sample, WindowSource, collate

__all__ = [
    "PretrainConfig",
    "PretrainResult",
    "Progress",
    "Sample",
    "WindowSource",
    "collate",
    "horizon_errors",
    "pretrain",
    "relative_report",
    "split_runs",
]
