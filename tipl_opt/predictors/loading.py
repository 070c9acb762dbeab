"""``load_predictor``: one entry point for a registered name, ``"default"`` or a checkpoint."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from tipl_opt.errors import PluginNotFoundError, TiplError
from tipl_opt.predictors.base import Predictor
from tipl_opt.predictors.tipl import CONFIG_FILE, TIPLPredictor

DEFAULT_ASSET = "default_predictor"


def default_predictor_path() -> Path | None:
    """Where the embedded default predictor lives in the installed package, if it ships one."""
    folder = Path(str(resources.files("tipl_opt") / "assets" / DEFAULT_ASSET))
    return folder if (folder / CONFIG_FILE).is_file() else None


def load_predictor(spec: str | os.PathLike[str] | Predictor, *,
                   device: str | torch.device = "cpu", **options: Any) -> Predictor:
    """Return a predictor from ``spec``:

    * a :class:`Predictor` instance: returned as it is;
    * ``"default"``: the pretrained predictor embedded in the package;
    * a registered name (``"linear"``, ``"tipl"``, or a plugin's): built with ``options``;
    * a path to a checkpoint folder written by ``tipl pretrain``.
    """
    if isinstance(spec, Predictor) and not isinstance(spec, (str, os.PathLike)):
        return spec
    text = os.fspath(spec)
    if text == "default":
        path = default_predictor_path()
        if path is None:
            raise TiplError("this tipl-opt install ships no default predictor; pass 'linear' or a "
                            "checkpoint folder written by `tipl pretrain`")
        return TIPLPredictor.load(path, device=device)
    from tipl_opt.plugins import predictors

    registered = predictors()
    if text in registered:
        predictor: Predictor = registered[text](**options)
        return predictor
    if Path(text).exists():
        return TIPLPredictor.load(text, device=device)
    raise PluginNotFoundError(
        f"Unknown predictor '{text}': not a registered name ({', '.join(sorted(registered))}), "
        "not 'default', and no checkpoint folder at that path.")
