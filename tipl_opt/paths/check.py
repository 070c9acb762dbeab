"""Validate learning-path files without stopping at the first bad one."""

from __future__ import annotations

import os
from pathlib import Path

from tipl_opt.errors import PathFormatError
from tipl_opt.paths.reader import LearningPath, path_files


def check_file(path: str | os.PathLike[str]) -> str | None:
    """Return ``None`` if the file is a valid learning path, else what is wrong with it."""
    try:
        LearningPath(path).validate()
    except PathFormatError as exc:
        return exc.problem
    return None


def check_folder(root: str | os.PathLike[str]) -> dict[Path, str | None]:
    """Check every ``*.safetensors`` file under ``root`` (or ``root`` itself, a file):
    ``{file: problem or None}``; empty when ``root`` does not exist."""
    if not Path(root).exists():
        return {}
    return {f: check_file(f) for f in path_files(root)}
