"""``tipl``: the temporal-SVD Transformer predictor, and its checkpoint (safetensors + JSON)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from safetensors.torch import load_file, save_file

from tipl_opt import atomic
from tipl_opt.errors import TiplError
from tipl_opt.paths.spec import ParamSpec
from tipl_opt.predictors.base import check_window, spacing
from tipl_opt.predictors.model import TIPLNet
from tipl_opt.predictors.tokens import WindowTokens, tokenize

CHECKPOINT_FORMAT = "tipl-predictor"
CHECKPOINT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class TIPLConfig(BaseModel):
    """Shape of a TIPL model. Stored in every checkpoint."""

    model_config = ConfigDict(extra="forbid")

    context: int = Field(default=8, ge=3)
    """K, snapshots in a window."""
    rank: int | None = None
    """Directions per group (default K - 1, which loses nothing)."""
    horizons: tuple[int, ...] = (1, 2, 4, 8)
    """Snapshot intervals ahead that the model predicts, one head each."""
    per_layer: bool = False
    """Tokens per (time, layer) with a temporal SVD per layer, instead of one for all weights."""
    residual: bool = False
    """Predict a correction to ``linear``'s extrapolation of the window's coordinates instead of
    a change from the last snapshot (an untrained model is then ``linear``)."""
    d_model: int = Field(default=64, ge=8)
    layers: int = Field(default=2, ge=1)
    heads: int = Field(default=4, ge=1)

    @model_validator(mode="after")
    def _check(self) -> TIPLConfig:
        if self.rank is None:
            self.rank = self.context - 1
            self.model_fields_set.discard("rank")  # derived, not given
        if not 1 <= self.rank <= self.context - 1:
            raise ValueError(f"rank must be in 1..context-1={self.context - 1}, got {self.rank}")
        if not self.horizons or min(self.horizons) < 1 or list(self.horizons) != sorted(
                set(self.horizons)):
            raise ValueError(f"horizons must be increasing positive integers, got {self.horizons}")
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        return self

    @property
    def r(self) -> int:
        return int(self.rank or self.context - 1)


def read_config(folder: Path) -> dict[str, Any]:
    """``folder/config.json`` as a JSON object, or a :class:`TiplError` naming the file."""
    file = folder / CONFIG_FILE
    try:
        config = json.loads(file.read_text())
    except FileNotFoundError as exc:
        raise TiplError(f"{folder} is not a predictor checkpoint (no {CONFIG_FILE})") from exc
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise TiplError(f"{file} is corrupt or unreadable: {exc}") from exc
    if not isinstance(config, dict):
        raise TiplError(f"{file} must hold a JSON object, got {type(config).__name__}; write "
                        "the checkpoint again with `tipl pretrain`")
    return config


class TIPLPredictor:
    """The learned predictor. ``predict`` follows :class:`~tipl_opt.predictors.Predictor`."""

    name = "tipl"

    def __init__(self, config: TIPLConfig | None = None, net: TIPLNet | None = None,
                 info: dict[str, Any] | None = None) -> None:
        self.config = config or TIPLConfig()
        self.net = net or TIPLNet(self.config.r, self.config.context, len(self.config.horizons),
                                  d_model=self.config.d_model, layers=self.config.layers,
                                  heads=self.config.heads,
                                  residual_horizons=(self.config.horizons
                                                     if self.config.residual else None))
        self.info: dict[str, Any] = info or {}
        """Training summary and validation metrics, as stored in the checkpoint."""

    @property
    def context(self) -> int:
        return self.config.context

    @property
    def horizons(self) -> tuple[int, ...]:
        return self.config.horizons

    # -- inference ---------------------------------------------------------------------------
    def predict_token_deltas(self, tokens: torch.Tensor, times: torch.Tensor,
                             descriptors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Batched network run (:class:`~tipl_opt.predictors.base.BatchedTokenPredictor`)."""
        self.net.eval()
        device = next(self.net.parameters()).device
        with torch.no_grad():
            out: torch.Tensor = self.net(tokens.to(device), times.to(device),
                                         descriptors.to(device), mask.to(device))
        return out.to(tokens.device)

    def tokenize(self, window: torch.Tensor, specs: Sequence[ParamSpec]) -> WindowTokens:
        return tokenize(window[-self.context:], specs, self.config.r,
                        per_layer=self.config.per_layer)

    def deltas(self, tokens: WindowTokens, times: torch.Tensor) -> torch.Tensor:
        """Run the network on one tokenised window: [G, H, r]."""
        device = next(self.net.parameters()).device
        g = tokens.tokens.shape[0]
        with torch.no_grad():
            out = self.net(tokens.tokens[None].to(device), times[None].to(device),
                           tokens.descriptors[None].to(device),
                           torch.ones(1, g, dtype=torch.bool, device=device))
        return out[0].to(tokens.last.device)

    def _horizon_delta(self, deltas: torch.Tensor, horizon: int) -> torch.Tensor:
        hs = self.horizons
        if horizon in hs:
            return deltas[:, hs.index(horizon)]
        if not hs[0] <= horizon <= hs[-1]:
            raise TiplError(f"this predictor was trained for horizons {list(hs)}; "
                            f"horizon {horizon} is outside that range")
        hi = next(i for i, h in enumerate(hs) if h > horizon)
        frac = (horizon - hs[hi - 1]) / (hs[hi] - hs[hi - 1])
        return (1 - frac) * deltas[:, hi - 1] + frac * deltas[:, hi]

    def predict(self, window: torch.Tensor, steps: torch.Tensor | None,
                specs: Sequence[ParamSpec], horizon: int) -> torch.Tensor:
        check_window(window, self.context, horizon, specs)
        self.net.eval()
        tokens = self.tokenize(window.to(torch.float32), specs)
        times = spacing(steps, self.context, window.device)
        return tokens.decode(self._horizon_delta(self.deltas(tokens, times), horizon))

    # -- checkpoint ------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike[str], **info: Any) -> Path:
        """Write ``folder/model.safetensors`` and ``folder/config.json`` (no pickle)."""
        from tipl_opt import __version__

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.info.update(info)
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        atomic.atomic_write(folder / WEIGHTS_FILE, lambda tmp: save_file(state, str(tmp)))
        config = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION,
                  "predictor": self.name,
                  "tipl_opt_version": __version__, "torch_version": torch.__version__,
                  "model": self.config.model_dump(mode="json"), **self.info}
        atomic.write_json(config, folder / CONFIG_FILE, sort_keys=True)
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu"
             ) -> TIPLPredictor:
        """Load a checkpoint folder (or its ``model.safetensors``/``config.json``), leaving the
        global random generators as they were."""
        folder = Path(path)
        if folder.is_file():
            folder = folder.parent
        config = read_config(folder)
        file = folder / CONFIG_FILE
        if config.get("format") != CHECKPOINT_FORMAT:
            raise TiplError(f"{folder} is not a tipl predictor checkpoint ({file}: 'format' is "
                            f"{config.get('format')!r:.60}, expected {CHECKPOINT_FORMAT!r})")
        if config.get("format_version") != CHECKPOINT_VERSION:
            raise TiplError(f"{folder}: unknown predictor checkpoint version "
                            f"{config.get('format_version')!r:.60} (this tipl-opt reads "
                            f"{CHECKPOINT_VERSION}); upgrade tipl-opt")
        if "model" not in config:
            raise TiplError(f"{file} has no 'model' field (the model's shape); the checkpoint "
                            "is incomplete: write it again with `tipl pretrain`")
        if not isinstance(config["model"], dict):
            raise TiplError(f"{file}: field 'model' must be a JSON object, got "
                            f"{type(config['model']).__name__}")
        try:
            model_cfg = TIPLConfig.model_validate(config["model"])
        except ValidationError as exc:
            problems = "; ".join(f"'{'.'.join(('model', *map(str, e['loc'])))}': {e['msg']}"
                                 for e in exc.errors())
            raise TiplError(f"{file} is invalid: {problems}") from exc
        info = {k: v for k, v in config.items()
                if k not in {"format", "format_version", "model"}}
        with torch.random.fork_rng(devices=[]):  # the random init must not move the caller's
            predictor = cls(model_cfg, info=info)  # RNG: a run that never jumps stays the base's
        try:
            state = load_file(str(folder / WEIGHTS_FILE))
            predictor.net.load_state_dict(state)
        except (OSError, RuntimeError, Exception) as exc:
            raise TiplError(f"{folder / WEIGHTS_FILE} cannot be loaded: {exc}") from exc
        predictor.net.to(device).eval()
        return predictor

    def __repr__(self) -> str:
        c = self.config
        return (f"TIPLPredictor(context={c.context}, rank={c.r}, horizons={list(c.horizons)}, "
                f"per_layer={c.per_layer}{', residual' if c.residual else ''})")
