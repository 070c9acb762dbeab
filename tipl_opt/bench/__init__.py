"""``tipl bench``: base vs TIPL vs TIPL + linear on fixed suites, same seeds, with intervals."""

from tipl_opt.bench.report import check_goals, write_report
from tipl_opt.bench.runner import run_suite
from tipl_opt.bench.suites import SUITES, BenchTask, get_suite

__all__ = ["SUITES", "BenchTask", "check_goals", "get_suite", "run_suite", "write_report"]
