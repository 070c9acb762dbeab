"""``tipl --help`` answers without importing torch or any RL library."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tipl_opt.cli import COMMANDS, app


def test_top_level_help_imports_neither_torch_nor_a_command_module() -> None:
    code = ("import sys\n"
            "from typer.testing import CliRunner\n"
            "from tipl_opt.cli import app\n"
            "result = CliRunner().invoke(app, ['--help'])\n"
            "assert result.exit_code == 0, result.output\n"
            "assert 'pretrain' in result.output\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'stable_baselines3', 'tianshou', 'gymnasium') "
            "or m.startswith('tipl_opt.cli.') and m != 'tipl_opt.cli.console')\n"
            "print(','.join(heavy))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_listed_command_loads_and_has_help(name: str) -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and name in result.output


def test_an_unknown_command_is_an_error_listing_nothing_heavy() -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["trian"])
    assert result.exit_code == 2
    assert "trian" in result.output
