"""The `egoforge` command: every sub-command has help, `list` shows what egoforge registers."""

import subprocess
import sys

import pytest

from egoforge.tools.cli import COMMANDS, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: egoforge" in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "download" in capsys.readouterr().out


def test_list_confirms_registration_in_llamafactory(capsys):
    assert main(["list", "--check"]) == 0
    out = capsys.readouterr().out
    for name in ("qwen2_vl_ego_frames", "qwen3_vl_ego_frames", "qwen3_vl_nothink_ego_frames"):
        assert f"{name}" in out
    assert "[NOT REGISTERED]" not in out and "[registered]" in out


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "egoforge.tools.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("egoforge ")
