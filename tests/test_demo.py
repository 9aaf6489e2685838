"""The README's first command runs the whole offline pipeline, and the tiny model measurably learns."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_trains_and_beats_chance(tmp_path):
    work = tmp_path / "demo"
    egoforge = Path(sys.executable).parent / "egoforge"
    result = subprocess.run([str(egoforge), "demo", "--workdir", str(work), "--quiet"], cwd=REPO,
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "| tiny Qwen3-VL after, frames as images |" in result.stdout
    rows = {r["Method"]: r for r in csv.DictReader((work / "demo_results.csv").open())}
    before = float(rows["tiny Qwen3-VL before, frames as images"]["micro"])
    after = float(rows["tiny Qwen3-VL after, frames as images"]["micro"])
    after_video = float(rows["tiny Qwen3-VL after, frames as video"]["micro"])
    # Chance is 25%; the untrained model cannot even answer in format.
    assert before < 10 and after > 45 and after_video > 35, rows
    assert (work / "demo_results.png").stat().st_size > 1000
    assert (work / "saves" / "egocross_lora" / "adapter_model.safetensors").exists()
    assert (work / "saves" / "egocross_lora" / "training_loss.png").exists()
