"""``load_predictor``: one entry point for a registered name, ``"default"`` or a checkpoint
folder (of any registered predictor that can be saved: see
:class:`~tipl_opt.predictors.base.CheckpointPredictor`)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from tipl_opt.errors import PluginNotFoundError, TiplError
from tipl_opt.predictors.base import Predictor
from tipl_opt.predictors.tipl import CONFIG_FILE, TIPLPredictor, read_config

DEFAULT_ASSET = "default_predictor"


def default_predictor_path() -> Path | None:
    """Where the embedded default predictor lives in the installed package, if it ships one."""
    folder = Path(str(resources.files("tipl_opt") / "assets" / DEFAULT_ASSET))
    return folder if (folder / CONFIG_FILE).is_file() else None


def load_checkpoint(folder: str | os.PathLike[str], *,
                    device: str | torch.device = "cpu") -> Predictor:
    """Load a checkpoint folder with the ``load`` of the predictor its ``config.json`` names
    (``"predictor"``; checkpoints written before that key existed are ``tipl``)."""
    path = Path(folder)
    if path.is_file():
        path = path.parent
    name = "tipl"
    try:
        config = read_config(path)
    except TiplError:
        config = {}  # the predictor's own loader says what is wrong with the folder
    if "predictor" in config:
        if not isinstance(config["predictor"], str):
            raise TiplError(f"{path / CONFIG_FILE}: field 'predictor' must be a string (the "
                            f"registered predictor name), got {config['predictor']!r:.60}")
        name = config["predictor"]
    if name == TIPLPredictor.name:
        return TIPLPredictor.load(path, device=device)
    from tipl_opt.plugins import predictors

    factory = predictors().get(name)
    load = getattr(factory, "load", None)
    if load is None:
        raise TiplError(f"{path / CONFIG_FILE} names predictor {name!r}, which is "
                        + ("not installed" if factory is None else "not loadable from a folder")
                        + "; install the plugin that provides it")
    predictor: Predictor = load(path, device=device)
    return predictor


def load_predictor(spec: str | os.PathLike[str] | Predictor, *,
                   device: str | torch.device = "cpu", **options: Any) -> Predictor:
    """Return a predictor from ``spec``:

    * a :class:`Predictor` instance: returned as it is;
    * ``"default"``: the pretrained predictor embedded in the package;
    * a registered name (``"linear"``, ``"tipl"``, or a plugin's): built with ``options``;
    * a path to a checkpoint folder written by ``tipl pretrain``.
    """
    if not isinstance(spec, str | os.PathLike):
        if not callable(getattr(spec, "predict", None)):
            raise TiplError(f"{type(spec).__name__} is not a predictor (it has no predict())")
        return spec  # a predictor object; one without ``horizons`` is taken as ``(1,)``
    text = os.fspath(spec)
    if text == "default":
        path = default_predictor_path()
        if path is None:
            raise TiplError("this tipl-opt install ships no default predictor; pass 'linear' or a "
                            "checkpoint folder written by `tipl pretrain`")
        return load_checkpoint(path, device=device)
    from tipl_opt.plugins import predictors

    registered = predictors()
    if text in registered:
        predictor: Predictor = registered[text](**options)
        return predictor
    if Path(text).exists():
        return load_checkpoint(text, device=device)
    raise PluginNotFoundError(
        f"Unknown predictor '{text}': not a registered name ({', '.join(sorted(registered))}), "
        "not 'default', and no checkpoint folder at that path.")
