"""What a jump is worth in return: predicted weights evaluated against the real ones.

On held-out learning paths, from the window ending at snapshot ``t``, every predictor predicts
the weights ``h`` snapshot intervals ahead (rolled out autoregressively with ``rollout`` when
``h`` is longer than the predictor's own horizons). A fresh agent is built with those weights
(through the run's adapter, :meth:`~tipl_opt.adapters.Adapter.evaluate_weights`) and evaluated;
so are the run's real weights at ``t`` and at ``t + h``, on the same start states. The jump
delivers the share

    (R_pred - R_t) / (R_{t+h} - R_t)

of the real improvement: 1 is as good as training on for ``h`` intervals, 0 as good as not
moving, negative worse than not moving. Per window the ratio is unstable when the real
improvement is small, so the aggregates per env, algorithm, predictor and horizon are the
*share of means*, mean(R_pred - R_t) / mean(R_{t+h} - R_t), with a 95% interval from a two-level
bootstrap (runs, then windows within runs), next to the median per-window share over windows
that really improved. ``no move`` (the weights at ``t``) and ``linear`` are always measured.

:func:`plan_jumps` (``plan.py``) picks the windows and makes every prediction (cheap, in this
process); :func:`measure_jumps` (``measure.py``) runs the evaluations (the cost: ``episodes``
per weight vector), in a local process pool with ``workers > 1``, and aggregates the rows
(``stats.py``); :func:`write_report` writes the JSON and a plot (``plot.py``).
"""

from tipl_opt.jump_value.measure import (
    FORMAT,
    FORMAT_VERSION,
    EvaluationDone,
    evaluate_window,
    measure_jumps,
    train_spec,
    write_report,
)
from tipl_opt.jump_value.plan import (
    BASELINE,
    NO_MOVE,
    JumpPlan,
    JumpValueConfig,
    NoMovePredictor,
    Window,
    WindowTask,
    load_predictors,
    plan_jumps,
    predict_ahead,
    rollout_steps,
)
from tipl_opt.jump_value.plot import plot_report
from tipl_opt.jump_value.stats import aggregate, cluster_bootstrap

__all__ = [
    "BASELINE",
    "FORMAT",
    "FORMAT_VERSION",
    "NO_MOVE",
    "EvaluationDone",
    "JumpPlan",
    "JumpValueConfig",
    "NoMovePredictor",
    "Window",
    "WindowTask",
    "aggregate",
    "cluster_bootstrap",
    "evaluate_window",
    "load_predictors",
    "measure_jumps",
    "plan_jumps",
    "plot_report",
    "predict_ahead",
    "rollout_steps",
    "train_spec",
    "write_report",
]
