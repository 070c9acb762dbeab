"""One way to write a file: to a unique temporary file beside it, then an atomic rename.

A reader never sees half a file, an interrupted write leaves the old file (if any) untouched
and no temporary file behind, and two writers never share a temporary name. Every file the
project writes (learning paths, checkpoints, resume states, reports, plots) goes through
:func:`atomic_write`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tipl_opt.errors import ConfigError


def atomic_write(out: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to fill a fresh temporary path in ``out``'s folder, then rename it
    over ``out``. The file gets the usual permissions (``0o666`` less the umask). On any error
    the temporary file is removed and the error re-raised; ``out`` keeps its old content."""
    out = Path(out)
    if out.is_dir():
        raise IsADirectoryError(f"{out} is a folder; give a file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are meant to be shared
        write(tmp)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def check_writable(folder: str | os.PathLike[str], flag: str = "--out") -> Path:
    """Create ``folder`` if needed and check that a file can be written in it, before any work
    is done; raise :class:`~tipl_opt.errors.ConfigError` naming the folder otherwise."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".tipl-write-test-"):
            pass
    except OSError as exc:
        raise ConfigError(f"Output folder {folder} is not writable: {exc.strerror or exc}. "
                          f"Choose another {flag}.") from exc
    return folder


def write_bytes(out: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``out`` atomically (flushed to disk before the rename)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    return atomic_write(out, write)


def write_text(out: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``out`` atomically."""
    return write_bytes(out, text.encode())


def json_safe(data: Any) -> Any:
    """``data`` with non-finite floats as strings (``"inf"``, ``"nan"``) and keys as strings,
    so that any JSON reader loads it."""
    if isinstance(data, float) and not math.isfinite(data):
        return str(data)
    if isinstance(data, dict):
        return {str(k): json_safe(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [json_safe(v) for v in data]
    return data


def write_json(data: Any, out: str | os.PathLike[str], **dumps: Any) -> Path:
    """Write ``data`` as indented JSON (see :func:`json_safe`) to ``out`` atomically."""
    dumps.setdefault("indent", 2)
    return write_text(out, json.dumps(json_safe(data), default=str, **dumps))
