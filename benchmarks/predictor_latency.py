"""Latency of one prediction on CPU for P from 1e3 to 1e7 (``linear`` and ``tipl``).

    python benchmarks/predictor_latency.py --out results/predictor_latency.json

One torch thread, K = 8, a random-walk window, the default (global) TIPL model untrained (the
cost does not depend on the weights). Median of repeated calls after a warm-up call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from tipl_opt import atomic
from tipl_opt.paths import ParamSpec
from tipl_opt.predictors import LinearPredictor, TIPLConfig, TIPLPredictor


def median_ms(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/predictor_latency.json"))
    parser.add_argument("--max-exp", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    predictors = {"linear": LinearPredictor(8), "tipl": TIPLPredictor(TIPLConfig()),
                  "tipl-layer": TIPLPredictor(TIPLConfig(per_layer=True))}
    rows = []
    print(f"{'P':>10}" + "".join(f"{n + ' ms':>14}" for n in predictors))
    for exp in range(3, args.max_exp + 1):
        p = 10**exp
        window = torch.randn(8, p).cumsum(dim=0)
        hidden = max(p // 200, 1)  # a 3-layer MLP-shaped spec for the per-layer variant
        specs = [ParamSpec("l0.weight", (hidden, 100), "actor"),
                 ParamSpec("l1.weight", (hidden, 99), "actor"),
                 ParamSpec("l2.bias", (p - 199 * hidden,), "critic")]
        repeats = 20 if p <= 10**5 else 5
        row = {"P": p}
        for name, pred in predictors.items():
            def call(pred=pred, window=window, specs=specs) -> None:  # type: ignore[no-untyped-def]
                pred.predict(window, None, specs, 1)

            row[name] = round(median_ms(call, repeats), 3)
        rows.append(row)
        print(f"{p:>10}" + "".join(f"{row[n]:14.2f}" for n in predictors))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(args.out, json.dumps({"threads": 1, "context": 8, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
