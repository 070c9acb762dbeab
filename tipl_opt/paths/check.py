"""Validate learning-path files without stopping at the first bad one."""

from __future__ import annotations

import os
from pathlib import Path

from tipl_opt.errors import PathFormatError
from tipl_opt.paths.format import SUFFIX
from tipl_opt.paths.reader import LearningPath


def check_file(path: str | os.PathLike[str]) -> str | None:
    """Return ``None`` if the file is a valid learning path, else what is wrong with it."""
    try:
        LearningPath(path).validate()
    except PathFormatError as exc:
        return exc.problem
    return None


def check_folder(root: str | os.PathLike[str]) -> dict[Path, str | None]:
    """Check every ``*.safetensors`` file under ``root``: ``{file: problem or None}``."""
    root = Path(root)
    files = [root] if root.is_file() else sorted(
        f for f in root.rglob(f"*{SUFFIX}") if not f.name.startswith("."))
    return {f: check_file(f) for f in files}
