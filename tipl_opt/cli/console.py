"""rich set up in one place: the console, logging through rich, error printing."""

from __future__ import annotations

import logging

import typer
from rich.console import Console
from rich.logging import RichHandler

console = Console()
err_console = Console(stderr=True)


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]",
                        handlers=[RichHandler(console=err_console, show_path=False)], force=True)


def fail(message: str) -> None:
    err_console.print(f"[bold red]Error:[/] {message}", highlight=False)


def exit_for_runs(failures: dict[str, str], interrupted: bool, kept: str) -> None:
    """Report failed runs (the last line of each traceback) and exit 130 when interrupted,
    1 when a run failed; return normally otherwise. ``kept`` says where finished runs are."""
    for name, error in failures.items():
        fail(f"run {name} failed: {error.strip().splitlines()[-1]}")
    if interrupted:
        fail(f"interrupted: {kept}")
        raise typer.Exit(130)
    if failures:
        raise typer.Exit(1)
