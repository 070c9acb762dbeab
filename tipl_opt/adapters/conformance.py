"""The adapter conformance suite: what every adapter plugin must do, as pytest tests that each
plugin runs against itself.

A plugin's test module subclasses :class:`AdapterConformance` and says which runs to use::

    from tipl_opt.adapters.conformance import AdapterConformance

    class TestConformance(AdapterConformance):
        adapter_name = "mylib"
        library_module = "mylib"            # must not be imported when the plugin loads
        cases = {"ppo": TrainSpec(algo="ppo", env_id="CartPole-v1", seed=0,
                                  total_steps=1024, every=300, hidden_sizes=(16,),
                                  eval_episodes=1)}
        discrete_only = "dqn"               # an algorithm that refuses Box actions, or None

Each case is trained once per test session (tiny budgets: a few thousand env steps at most).
The suite pins the :class:`~tipl_opt.adapters.Adapter` contract: registration through the
plugin, ``check`` errors, snapshots from step 0 to the budget holding the optimizer's own
tensors under stable names, a learning-path round trip, ``evaluate_weights`` reproducing the
recorded return and refusing foreign weights, determinism for a seed, and the TIPL summary of
a collection with a :class:`~tipl_opt.adapters.TIPLSetup`. Library-specific behaviour (exact
cadences, target networks, roles) stays in the plugin's own tests.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from tipl_opt.adapters.base import Adapter, TIPLSetup, TrainSpec
from tipl_opt.errors import ConfigError, IncompatibleEnvError
from tipl_opt.paths import LearningPath, PathWriter, Snapshot, flatten, unflatten
from tipl_opt.plugins import get_adapter


@dataclass
class Recorded:
    """What the sinks saw during one collection (weights copied, as a real sink does)."""

    snapshots: list[Snapshot] = field(default_factory=list)
    weights: list[torch.Tensor] = field(default_factory=list)
    progress: list[int] = field(default_factory=list)
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    def on_snapshot(self, snapshot: Snapshot) -> None:
        self.snapshots.append(snapshot)
        self.weights.append(flatten(snapshot.params).clone())


def record(adapter: Adapter, spec: TrainSpec, tipl: TIPLSetup | None = None) -> Recorded:
    """Collect ``spec`` with ``adapter`` and keep what the sinks saw."""
    rec = Recorded()
    extra: dict[str, Any] = {"tipl": tipl} if tipl is not None else {}
    rec.hyperparameters = adapter.collect(spec, rec.on_snapshot, rec.progress.append, **extra)
    return rec


_RECORDED: dict[tuple[str, str], Recorded] = {}


class AdapterConformance:
    """Subclass as ``TestSomething`` in a plugin's tests and set the class attributes."""

    adapter_name: ClassVar[str]
    """The name the plugin registers the adapter under."""
    library_module: ClassVar[str]
    """The RL library's top-level module, which loading the plugin must not import."""
    cases: ClassVar[dict[str, TrainSpec]]
    """Tiny runs, one per algorithm worth checking (the first is the cheapest)."""
    discrete_only: ClassVar[str | None] = None
    """An algorithm of this adapter that needs a Discrete action space (checked on a Box env)."""
    box_env: ClassVar[str] = "Pendulum-v1"

    # -- helpers ----------------------------------------------------------------------------
    @property
    def adapter(self) -> Adapter:
        return get_adapter(self.adapter_name)

    def recorded(self, case: str) -> Recorded:
        """The collection of ``case`` (once per session; a plugin may hand over its own)."""
        key = (self.adapter_name, case)
        if key not in _RECORDED:
            torch.set_num_threads(1)
            _RECORDED[key] = record(self.adapter, self.cases[case])
        return _RECORDED[key]

    @pytest.fixture(params=["first", "last"])
    def case(self, request: pytest.FixtureRequest) -> str:
        """The first and the last case (both, when they differ)."""
        names = list(self.cases)
        name = names[0] if request.param == "first" else names[-1]
        if request.param == "last" and len(names) == 1:
            pytest.skip("a single case")
        return name

    # -- registration -------------------------------------------------------------------------
    def test_conformance_registered_by_its_plugin_without_importing_the_library(self) -> None:
        adapter = self.adapter
        assert isinstance(adapter, Adapter) and adapter.name == self.adapter_name
        assert set(self.cases) <= set(adapter.algorithms)
        assert adapter.library_version()[:1].isdigit()
        code = ("import sys\nfrom tipl_opt.plugins import get_adapter\n"
                f"get_adapter({self.adapter_name!r})\n"
                f"print({self.library_module!r} in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        assert out.stdout.strip() == "False"

    # -- check ---------------------------------------------------------------------------------
    def test_conformance_check_accepts_the_cases(self) -> None:
        for spec in self.cases.values():
            self.adapter.check(spec)

    def test_conformance_check_rejects_an_unknown_algorithm_listing_the_supported_ones(
            self) -> None:
        spec = next(iter(self.cases.values())).model_copy(update={"algo": "nosuchalgo"})
        with pytest.raises(ConfigError, match=self.adapter.algorithms[0]):
            self.adapter.check(spec)

    def test_conformance_check_rejects_an_unknown_env(self) -> None:
        spec = next(iter(self.cases.values())).model_copy(update={"env_id": "NoSuchEnv-v0"})
        with pytest.raises(ConfigError, match="NoSuchEnv"):
            self.adapter.check(spec)

    def test_conformance_check_rejects_a_discrete_only_algorithm_on_a_box_env(self) -> None:
        if self.discrete_only is None:
            pytest.skip("no discrete-only algorithm")
        spec = TrainSpec(algo=self.discrete_only, env_id=self.box_env, seed=0, total_steps=100,
                         every=50)
        with pytest.raises(IncompatibleEnvError, match="Discrete"):
            self.adapter.check(spec)

    # -- collection ----------------------------------------------------------------------------
    def test_conformance_snapshots_run_from_zero_to_the_budget(self, case: str) -> None:
        rec, spec = self.recorded(case), self.cases[case]
        steps = [s.env_steps for s in rec.snapshots]
        assert steps[0] == 0 and len(steps) >= 3
        assert all(b > a for a, b in itertools.pairwise(steps))
        assert abs(steps[-1] - spec.total_steps) < spec.every  # the final weights, at the budget
        assert rec.progress and max(rec.progress) <= steps[-1]

    def test_conformance_snapshots_keep_names_shapes_and_move(self, case: str) -> None:
        rec = self.recorded(case)
        first = [(p.name, tuple(p.tensor.shape)) for p in rec.snapshots[0].params]
        assert len({name for name, _ in first}) == len(first)  # unique names
        for snapshot in rec.snapshots:
            assert [(p.name, tuple(p.tensor.shape)) for p in snapshot.params] == first
        assert not torch.equal(rec.weights[0], rec.weights[-1])
        assert all(s.grad_steps >= 0 for s in rec.snapshots)
        assert rec.snapshots[-1].grad_steps > 0

    def test_conformance_evaluated_snapshots_have_finite_returns(self, case: str) -> None:
        rec, spec = self.recorded(case), self.cases[case]
        if spec.eval_episodes == 0:
            pytest.skip("no evaluation")
        assert all(math.isfinite(s.return_mean) for s in rec.snapshots)

    def test_conformance_collection_round_trips_through_a_learning_path(
            self, tmp_path: Path) -> None:
        name = next(iter(self.cases))
        rec, spec = self.recorded(name), self.cases[name]
        writer = PathWriter(tmp_path / "run.safetensors",
                            meta={"library": self.adapter_name, "algorithm": spec.algo,
                                  "env_id": spec.env_id, "seed": spec.seed})
        for snapshot in rec.snapshots:
            writer.add(snapshot)
        path = LearningPath(writer.finish(hyperparameters=rec.hyperparameters))
        assert path.num_snapshots == len(rec.snapshots)
        assert [s.name for s in path.specs] == [p.name for p in rec.snapshots[0].params]
        assert torch.equal(torch.tensor(np.array(path.weights[-1])), rec.weights[-1])

    def test_conformance_same_seed_gives_identical_weights(self) -> None:
        name = next(iter(self.cases))
        first, again = self.recorded(name), record(self.adapter, self.cases[name])
        assert torch.equal(first.weights[-1], again.weights[-1])

    # -- evaluating weights --------------------------------------------------------------------
    def test_conformance_evaluate_weights_reproduces_the_recorded_return(self,
                                                                         case: str) -> None:
        rec, spec = self.recorded(case), self.cases[case]
        last = rec.snapshots[-1]
        named = unflatten(rec.weights[-1], [p.spec for p in last.params])
        torch.manual_seed(123)
        before = torch.rand(1)
        torch.manual_seed(123)
        mean, std = self.adapter.evaluate_weights(spec, named, episodes=spec.eval_episodes or 1)
        assert torch.equal(torch.rand(1), before)  # the caller's random stream is left alone
        if spec.eval_episodes:
            assert mean == pytest.approx(last.return_mean, rel=1e-5, abs=1e-6)
        assert math.isfinite(mean) and math.isfinite(std)

    def test_conformance_evaluate_weights_rejects_missing_or_misshaped_tensors(self) -> None:
        name = next(iter(self.cases))
        rec, spec = self.recorded(name), self.cases[name]
        named = unflatten(rec.weights[-1], [p.spec for p in rec.snapshots[-1].params])
        victim = next(iter(named))
        missing = {k: v for k, v in named.items() if k != victim}
        with pytest.raises(ConfigError, match=victim.replace(".", r"\.")):
            self.adapter.evaluate_weights(spec, missing, episodes=1)
        misshaped = {**named, victim: torch.zeros(*named[victim].shape, 2)}
        with pytest.raises(ConfigError, match="shape"):
            self.adapter.evaluate_weights(spec, misshaped, episodes=1)

    # -- with TIPL -----------------------------------------------------------------------------
    def test_conformance_collection_with_tipl_reports_its_summary(self) -> None:
        name = next(iter(self.cases))
        spec = self.cases[name]
        rec = record(self.adapter, spec, TIPLSetup(predictor="linear", jump={"context": 2}))
        summary = rec.hyperparameters["tipl"]
        assert summary["predictor"] == "linear" and summary["parts"]
        assert summary["jump"]["context"] == 2
        assert set(summary["counters"]) == set(summary["parts"])
        for counters in summary["counters"].values():
            assert counters["snapshots"] >= 2
            assert counters["jumps_tried"] == (counters["jumps_accepted"]
                                               + counters["jumps_rejected"])
        assert sum(c["jumps_tried"] for c in summary["counters"].values()) >= 1

    def test_conformance_tipl_that_never_jumps_trains_exactly_like_the_base(self) -> None:
        # A drop-in optimizer: attaching (the default predictor loaded, snapshots, guards, the
        # watchdog) must not change training by itself, not even through the random stream,
        # or every base-vs-TIPL comparison would mix the jumps' effect with chaos.
        name = next(iter(self.cases))
        spec = self.cases[name]
        base = self.recorded(name)
        rec = record(self.adapter, spec, TIPLSetup(predictor="default",
                                                   jump={"warmup_steps": 10**9}))
        assert sum(c["jumps_tried"] for c in rec.hyperparameters["tipl"]["counters"].values()) == 0
        assert len(rec.weights) == len(base.weights)
        assert torch.equal(rec.weights[-1], base.weights[-1])
