"""Built-in predictor plugin: registers ``average``, ``linear``, ``pptb``, ``tipl`` and ``trend``
like any third-party plugin."""

from __future__ import annotations

from typing import Any

from tipl_opt.hookspecs import hookimpl
from tipl_opt.predictors.average import AveragePredictor
from tipl_opt.predictors.linear import LinearPredictor
from tipl_opt.predictors.pptb import PPTBPredictor
from tipl_opt.predictors.tipl import TIPLPredictor
from tipl_opt.predictors.trend import TrendPredictor


@hookimpl
def tipl_register_predictors(register: Any) -> None:
    register("average", AveragePredictor)
    register("linear", LinearPredictor)
    register("pptb", PPTBPredictor)
    register("tipl", TIPLPredictor)
    register("trend", TrendPredictor)
