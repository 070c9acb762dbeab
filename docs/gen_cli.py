"""Generate docs/cli.md from the real ``tipl`` Typer app.

    python docs/gen_cli.py            # rewrite docs/cli.md
    python docs/gen_cli.py --check    # exit 1 if docs/cli.md is out of date

Runs ``typer tipl_opt.cli utils docs --name tipl`` and tidies its output for the site: a note on
how to regenerate under the title, and HTML entities (``&#x27;``) turned back into characters.
"""

from __future__ import annotations

import argparse
import html
import subprocess
import sys
import tempfile
from pathlib import Path

CLI_MD = Path(__file__).resolve().parent / "cli.md"
TITLE = "CLI reference"
NOTE = """!!! note "Generated file"
    This page is generated from the `tipl` command itself; do not edit it by hand. Regenerate it
    with `python docs/gen_cli.py` (which runs
    `typer tipl_opt.cli utils docs --name tipl`); `tests/test_docs.py` fails when it is stale.
"""


def typer_docs() -> str:
    """The raw markdown that ``typer ... utils docs`` writes for the ``tipl`` app."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cli.md"
        subprocess.run([sys.executable, "-m", "typer", "tipl_opt.cli", "utils", "docs",
                        "--name", "tipl", "--title", TITLE, "--output", str(out)],
                       check=True, capture_output=True, text=True)
        return out.read_text()


def render() -> str:
    """The content docs/cli.md should have."""
    lines = html.unescape(typer_docs()).rstrip().splitlines()
    if not lines or lines[0] != f"# {TITLE}":
        raise RuntimeError(f"unexpected typer output, first line: {lines[:1]}")
    return "\n".join([lines[0], "", NOTE.rstrip(), *lines[1:]]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, do not write")
    args = parser.parse_args()
    text = render()
    if args.check:
        if CLI_MD.read_text() != text:
            print(f"{CLI_MD} is out of date: run python docs/gen_cli.py", file=sys.stderr)
            return 1
        return 0
    CLI_MD.write_text(text)
    print(f"wrote {CLI_MD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
