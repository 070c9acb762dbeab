"""Pretrain a TIPL predictor on a folder of learning paths."""

from __future__ import annotations

import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from tipl_opt import atomic
from tipl_opt.errors import ConfigError, PathFormatError, TiplError
from tipl_opt.paths.reader import LearningPath, PathDataset
from tipl_opt.predictors.base import CheckpointPredictor
from tipl_opt.predictors.linear import LinearPredictor
from tipl_opt.predictors.loading import load_checkpoint
from tipl_opt.predictors.tipl import TIPLConfig, TIPLPredictor
from tipl_opt.pretrain.loader import WindowBatches, make_loader
from tipl_opt.pretrain.metrics import horizon_errors, relative_report
from tipl_opt.pretrain.state import has_state, load_state, read_meta, save_state
from tipl_opt.pretrain.windows import Batch, Sample, WindowSource, collate

logger = logging.getLogger(__name__)

RESUME_DIR = ".resume"


class PretrainConfig(BaseModel):
    """Everything ``tipl pretrain`` needs. Validated eagerly."""

    model_config = ConfigDict(extra="forbid")

    paths: Path = Path("data")
    out: Path = Path("predictor")
    steps: int = Field(default=2000, ge=1)
    batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    val_fraction: float = Field(default=0.2, ge=0, lt=1)
    eval_every: int = Field(default=200, ge=1)
    max_val_windows: int = Field(default=512, ge=1)
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "auto"
    loader_workers: int = Field(default=0, ge=0)
    """Processes preparing batches of windows while the model trains (0: in this process; see
    :mod:`tipl_opt.pretrain.loader`). Not part of the resume key: a run may resume with
    another count (the stream of windows then continues differently)."""
    resume: bool = True
    library: str | None = None
    algorithm: str | None = None
    env_id: str | None = None
    loss: Literal["mse", "l1", "direction"] = "mse"
    """The training objective (and the validation loss that picks the best checkpoint), per
    group and horizon: ``mse`` squared error per coordinate (the conditional mean; it shrinks an
    uncertain move), ``l1`` absolute error (the median, as NiNo trains), ``direction``
    1 - cosine plus the absolute error of the log length (direction and length learned
    apart, so an uncertain direction does not shorten the move)."""
    model: TIPLConfig = Field(default_factory=TIPLConfig)
    init: str | None = None
    """Fine-tune: start from this checkpoint's weights (``default``, the embedded predictor, or
    a folder written by ``tipl pretrain``) instead of a random init. The model's shape comes
    from it (a model setting given that differs is an error); the runs it was trained on, by
    name, are never held out for validation; and it is the checkpoint to beat: its own
    validation loss, measured before the first step, is the first best."""
    recipe: str | None = None
    """Free text stored in the checkpoint: how the data was made (the command, seeds)."""


@dataclass
class Progress:
    step: int
    total: int
    train_loss: float
    val_loss: float | None
    best_val_loss: float


@dataclass
class PretrainResult:
    predictor: CheckpointPredictor
    out: Path
    report: dict[str, Any]
    best_val_loss: float


def split_runs(paths: list[LearningPath], val_fraction: float, seed: int,
               keep_in_training: set[str] | frozenset[str] = frozenset()
               ) -> tuple[list[LearningPath], list[LearningPath]]:
    """Hold out whole runs (never windows of a training run) for validation, about
    ``val_fraction`` of them, never one whose name is in ``keep_in_training`` (the runs a
    fine-tuned checkpoint has already learned from)."""
    order = list(range(len(paths)))
    random.Random(seed).shuffle(order)
    n_val = round(len(paths) * val_fraction) if len(paths) > 1 else 0
    if val_fraction > 0 and len(paths) > 1:
        n_val = min(max(n_val, 1), len(paths) - 1)
    eligible = [i for i in order if paths[i].name not in keep_in_training]
    val = sorted(eligible[:n_val])
    train = sorted(set(order) - set(val))
    return [paths[i] for i in train], [paths[i] for i in val]


def load_init(config: PretrainConfig) -> TIPLPredictor:
    """The checkpoint ``config.init`` names, checked against the model settings given."""
    from tipl_opt.predictors.loading import load_predictor

    try:
        init = load_predictor(str(config.init), device="cpu")
    except TiplError as exc:
        raise ConfigError(f"--init {config.init}: {exc}") from exc
    if not isinstance(init, TIPLPredictor):
        kind = getattr(init, "name", type(init).__name__)
        raise ConfigError(f"--init {config.init} is a {kind!r} predictor; fine-tuning starts "
                          "from a TIPL checkpoint ('default' or a folder written by "
                          "`tipl pretrain`)")
    given = config.model.model_dump(include=config.model.model_fields_set)
    theirs = init.config.model_dump()
    conflicts = [f"{k}: {v!r} (the checkpoint has {theirs[k]!r})" for k, v in given.items()
                 if v != theirs[k]]
    if conflicts:
        raise ConfigError(f"--init {config.init} fixes the model's shape; drop the model "
                          "settings that differ: " + "; ".join(conflicts))
    return init


LENGTH_EPS = 1e-3
"""Added to move lengths (in normalised coordinates, where a window's moves are of order 1)
before their log is taken, so a zero move has a finite loss and gradient."""


def masked_loss(pred: torch.Tensor, batch: Batch, loss: str = "mse") -> torch.Tensor:
    """The mean of ``loss`` (see :class:`PretrainConfig`) over real groups and available
    horizons, in normalised coords. ``pred`` and ``batch.targets`` are [B, G, H, r]."""
    mask = batch.group_mask[:, :, None] & batch.horizon_mask[:, None, :]  # [B, G, H]
    if loss == "direction":
        length = (pred * pred).sum(dim=-1).add(LENGTH_EPS**2).sqrt()
        true_length = batch.targets.norm(dim=-1) + LENGTH_EPS
        cosine = (pred * batch.targets).sum(dim=-1) / (length * true_length)
        err = (1 - cosine) + (length.log() - true_length.log()).abs()
    else:
        diff = pred - batch.targets
        err = (diff.abs() if loss == "l1" else diff * diff).mean(dim=-1)
    return (err * mask).sum() / mask.sum().clamp(min=1)


def _lr_at(step: int, total: int, base: float) -> float:
    warmup = max(1, min(100, total // 10))
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _val_loss(net: torch.nn.Module, samples: list[Sample], device: torch.device,
              loss: str) -> float:
    net.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(samples), 256):
            batch = collate(samples[i : i + 256])
            pred = net(batch.tokens.to(device), batch.times.to(device),
                       batch.descriptors.to(device), batch.group_mask.to(device)).cpu()
            total += float(masked_loss(pred, batch, loss)) * len(batch.tokens)
            count += len(batch.tokens)
    net.train()
    return total / max(count, 1)


def run_ids(paths: list[LearningPath], root: Path) -> dict[Path, str]:
    """Path -> the name a checkpoint records for the run: the run's name, or where two runs
    under ``root`` share it (the same library, algorithm, env and seed in two recipes), its
    path relative to ``root`` without the suffix (``wide/ppo-sb3-relu128/Acrobot-v1/
    sb3-ppo-Acrobot-v1-s1``), whose last part is still the name."""
    counts = Counter(lp.name for lp in paths)
    ids = {}
    for lp in paths:
        if counts[lp.name] == 1:
            ids[lp.path] = lp.name
            continue
        try:
            relative = lp.path.resolve().relative_to(root.resolve())
        except ValueError:
            relative = lp.path
        ids[lp.path] = relative.with_name(lp.name).as_posix()
    return ids


def run_name(run_id: str) -> str:
    """The run name of an id :func:`run_ids` recorded (the last part of a path id)."""
    return run_id.rsplit("/", 1)[-1]


def trained_run_names(info: dict[str, Any]) -> set[str]:
    """The names of the runs a checkpoint (its ``info``: the config.json fields beyond the
    model) was trained on, the runs of the checkpoint it was fine-tuned from included."""
    names: set[str] = set()
    training = info.get("training") if isinstance(info, dict) else None
    while isinstance(training, dict):
        names |= {run_name(str(i)) for i in training.get("train_runs", []) or []}
        init = training.get("init")
        training = init.get("training") if isinstance(init, dict) else None
    return names


def _data_summary(paths: list[LearningPath]) -> dict[str, Any]:
    groups = Counter(f"{lp.library}/{lp.algorithm}/{lp.env_id}" for lp in paths)
    return {"runs": len(paths), "by_source": dict(sorted(groups.items())),
            "snapshots": sum(lp.num_snapshots for lp in paths),
            "params": sorted({lp.num_params for lp in paths})}


def _resume_key(config: PretrainConfig) -> dict[str, Any]:
    """What must not change between a run and its resumption."""
    return config.model_dump(mode="json", exclude={"steps", "resume", "recipe",
                                                   "loader_workers"})


def _differences(saved: Any, now: Any, prefix: str = "") -> list[str]:
    """``"key: saved -> now"`` for every setting that differs (nested keys joined by dots)."""
    if isinstance(saved, dict) and isinstance(now, dict):
        return [d for key in sorted(set(saved) | set(now), key=str)
                for d in _differences(saved.get(key), now.get(key), f"{prefix}{key}.")]
    return [] if saved == now else [f"{prefix[:-1]}: {saved!r} -> {now!r}"]


def finite_runs(dataset: PathDataset) -> list[LearningPath]:
    """The runs whose values are all valid (finite weights, ordered steps); each other run is
    skipped with a warning naming its file and the problem."""
    good = []
    for lp in dataset:
        try:
            lp.validate()
        except PathFormatError as exc:
            logger.warning("skipping %s: %s (run `tipl paths check` for details)", exc.path,
                           exc.problem)
            continue
        good.append(lp)
    return good


def pretrain(config: PretrainConfig, on_progress: Callable[[Progress], None] | None = None
             ) -> PretrainResult:
    """Train a TIPL model on ``config.paths``; the best checkpoint (lowest validation loss on
    held-out runs) is written to ``config.out``. Resumes from ``out/.resume`` if present.

    Checked before any training step: the data (runs with non-finite values are skipped with a
    warning naming the file), that ``out`` can be written, and that a resume state there reads
    and was made with the same settings. Every file is written atomically."""
    if not config.paths.is_dir():
        raise ConfigError(f"no folder {config.paths}: pass --paths DIR with learning paths "
                          "written by `tipl collect`")
    dataset = PathDataset(config.paths, library=config.library, algorithm=config.algorithm,
                          env_id=config.env_id)
    if len(dataset) == 0:
        raise ConfigError(f"no learning paths under {config.paths} (with the given filters); "
                          "collect some with `tipl collect`")
    runs = finite_runs(dataset)
    if not runs:
        raise ConfigError(f"every learning path under {config.paths} holds invalid values (see "
                          "the warnings above); re-collect them")
    atomic.check_writable(config.out, flag="--out")
    resume_dir = config.out / RESUME_DIR
    resuming = config.resume and has_state(resume_dir)
    if resuming:
        changed = _differences(read_meta(resume_dir).get("config"), _resume_key(config))
        if changed:
            raise ConfigError(f"{resume_dir} was written with other settings ("
                              + "; ".join(changed[:5]) + "): rerun with those settings to "
                              "resume, pass --restart to start afresh, or use another --out")
    init = load_init(config) if config.init is not None else None
    mcfg = init.config if init is not None else config.model
    learned = trained_run_names(init.info) if init is not None else set()
    train_paths, val_paths = split_runs(runs, config.val_fraction, config.seed, learned)
    if not val_paths:
        logger.warning("no run to hold out (%s): validating on the training runs, so the "
                       "validation loss is not a held-out one",
                       "only one run" if len(runs) == 1 else "--val-fraction 0"
                       if config.val_fraction == 0 else "--init was trained on every one")
        val_paths = train_paths
    train_src = WindowSource(train_paths, mcfg.context, mcfg.horizons, mcfg.r, mcfg.per_layer)
    val_src = WindowSource(val_paths, mcfg.context, mcfg.horizons, mcfg.r, mcfg.per_layer)
    starts = val_src.starts()
    stride = max(1, math.ceil(len(starts) / config.max_val_windows))
    val_samples = [val_src.get(run, start) for run, start in starts[::stride]]

    device = torch.device("cuda" if config.device == "auto" and torch.cuda.is_available()
                          else "cpu" if config.device == "auto" else config.device)
    torch.manual_seed(config.seed)
    predictor = TIPLPredictor(mcfg)
    if init is not None:
        predictor.net.load_state_dict(init.net.state_dict())
    net = predictor.net.to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    step, best = 0, math.inf
    init_loss = None if init is None else _val_loss(net, val_samples, device, config.loss)
    if resuming:
        meta = load_state(resume_dir, net=net, optimizer=optimizer, generator=generator)
        try:
            step, best = int(meta["step"]), float(meta["best_val_loss"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"the resume state in {resume_dir} is corrupt ({exc}); delete "
                              f"{resume_dir} to start afresh (or pass --restart)") from exc
        logger.info("resuming from step %d", step)
    elif init_loss is not None:
        best = init_loss  # the checkpoint to beat
        predictor.save(config.out)
        logger.info("fine-tuning %s: validation loss %.4f before the first step", config.init,
                    best)
    init_record = None if init is None else {
        "source": config.init, "training": init.info.get("training"),
        "validation_loss": init_loss}
    started = time.perf_counter()
    train_loss = math.nan
    net.train()
    batches = WindowBatches([lp.path for lp in train_src.paths], context=mcfg.context,
                            horizons=mcfg.horizons, rank=mcfg.r, per_layer=mcfg.per_layer,
                            batch_size=config.batch_size, seed=config.seed, start_step=step,
                            generator=generator)
    loader = iter(make_loader(batches, config.loader_workers, pin_memory=device.type == "cuda"))
    while step < config.steps:
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, config.steps, config.lr)
        batch = next(loader).to(device)
        pred = net(batch.tokens, batch.times, batch.descriptors, batch.group_mask)
        loss = masked_loss(pred, batch, config.loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        step += 1
        value = float(loss.detach())
        train_loss = value if math.isnan(train_loss) else 0.9 * train_loss + 0.1 * value
        val_loss = None
        if step % config.eval_every == 0 or step == config.steps:
            val_loss = _val_loss(net, val_samples, device, config.loss)
            if val_loss < best:
                best = val_loss
                predictor.save(config.out)
            save_state(resume_dir, net=net, optimizer=optimizer, generator=generator,
                       meta={"step": step, "best_val_loss": best,
                             "config": _resume_key(config)})
        if on_progress:
            on_progress(Progress(step, config.steps, train_loss, val_loss, best))
    del loader  # stops its workers
    if init_loss is not None and best >= init_loss:
        logger.warning("no fine-tuning step beat --init %s on the held-out runs (validation "
                       "loss %.4f): the checkpoint written holds its weights unchanged",
                       config.init, init_loss)
    best_predictor = load_checkpoint(config.out, device="cpu")
    assert isinstance(best_predictor, CheckpointPredictor)
    errors = horizon_errors({"tipl": best_predictor, "linear": LinearPredictor(mcfg.context)},
                            val_samples, mcfg.horizons)
    report = relative_report(errors, mcfg.horizons)
    skipped = sorted({lp.name for lp in dataset} - {lp.name for lp in runs})
    ids = run_ids(runs, Path(config.paths))
    best_predictor.save(config.out, training={
        "data": _data_summary(runs), "skipped_runs": skipped,
        "train_runs": [ids[lp.path] for lp in train_paths],
        "val_runs": [ids[lp.path] for lp in val_paths], "steps": config.steps,
        "batch_size": config.batch_size, "lr": config.lr, "seed": config.seed,
        "loss": config.loss, "init": init_record,
        "recipe": config.recipe, "paths": str(config.paths),
        "wall_time_s": round(time.perf_counter() - started, 1)},
        validation={"loss": best, "windows": len(val_samples), **report})
    return PretrainResult(best_predictor, config.out, report, best)
