"""`egoforge doctor`: each side door an upstream tool uses to find egoforge is checked the way the tool uses it, and a
broken one is a failure with its fix (verl itself only logs a failed plugin at DEBUG)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from egoforge import doctor

REPO = Path(__file__).resolve().parents[1]


def run_doctor(*args: str, env: dict | None = None, prelude: str = "") -> subprocess.CompletedProcess:
    code = prelude + "import sys; from egoforge.tools.cli import main; sys.exit(main(['doctor', *sys.argv[1:]]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600,
                          cwd=REPO, env={**os.environ, **(env or {})})


@pytest.mark.skipif(doctor.environment_kind() != "sft", reason="the sft environment holds every checked tool")
def test_every_extension_is_found_in_the_sft_environment():
    checks = {check.name: check for check in doctor.run_checks()}
    for name in ("llamafactory hook", "verl plugin", "lmms-eval model"):
        assert checks[name].ok, checks[name]


def test_a_verl_registration_that_fails_to_import_is_an_error():
    """The reward manager module cannot import: verl would carry on with its default manager; doctor fails."""
    pytest.importorskip("verl")
    prelude = ("import importlib.abc, sys\n"
               "class Refuse(importlib.abc.MetaPathFinder):\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name == 'egoforge.verl.reward_manager': raise ImportError('simulated broken install')\n"
               "sys.meta_path.insert(0, Refuse())\n")
    result = run_doctor(prelude=prelude)
    assert result.returncode == 1, result.stdout + result.stderr[-2000:]
    assert "[FAIL] verl plugin" in result.stdout and "reward manager ego3s_irl" in result.stdout




def test_recipe_inputs_and_environment(tmp_path):
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    recipe = tmp_path / "run.yaml"
    recipe.write_text("# a recipe\n# Environment: rl (`make setup-rl`)\n\nmodel_name_or_path: models/tiny\n"
                      "dataset_dir: data/info\nmedia_dir: data/media\noutput_dir: saves/out\n"
                      "data:\n  frames_root: data/frames\n")
    checks = {check.name: check for check in doctor.check_recipe(recipe, "sft", tmp_path)}
    assert checks["run.yaml: model_name_or_path"].ok
    dataset_dir = checks["run.yaml: dataset_dir"]
    assert not dataset_dir.ok and "data/info does not exist" in dataset_dir.detail
    assert not checks["run.yaml: data.frames_root"].ok
    assert "run.yaml: output_dir" not in checks  # outputs are made by the run
    assert not checks["run.yaml: environment"].ok and "make setup-rl" in checks["run.yaml: environment"].fix


def test_hub_id_is_named_as_not_local(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_name_or_path: Qwen/Qwen3-VL-4B-Instruct\n")
    (check,) = doctor.check_recipe(recipe, None, tmp_path)
    assert not check.ok and "not a local folder" in check.detail


def test_shell_recipe_inputs_follow_exported_variables(tmp_path, monkeypatch):
    recipe = REPO / "recipes" / "ego3s_grpo_qwen2_5_vl_3b.sh"
    (tmp_path / "m").mkdir()
    monkeypatch.setenv("MODEL", str(tmp_path / "m"))
    inputs = dict(doctor.recipe_inputs(recipe))
    assert inputs["MODEL"] == str(tmp_path / "m") and inputs["TRAIN_FILES"].endswith(".parquet")


def test_lock_drift_names_the_package(tmp_path):
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / "sft.txt").write_text("packaging==0.0.1    # via egoforge\n")
    check = doctor.check_lock("sft", tmp_path)
    assert not check.ok and "packaging" in check.detail and "lock 0.0.1" in check.detail


def test_switched_off_verl_plugin_is_an_error(monkeypatch):
    pytest.importorskip("verl")
    monkeypatch.setenv("EGOFORGE_DISABLE_VERL_PLUGIN", "1")
    check = doctor.check_verl_plugin()
    assert not check.ok and "EGOFORGE_DISABLE_VERL_PLUGIN" in check.detail


def test_ego3s_recipe_stops_before_verl_when_doctor_fails(tmp_path):
    """The shell recipes run `egoforge doctor "$0"` first: a missing input stops them before verl starts."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MODEL": str(tmp_path / "no-such-model")}
    result = subprocess.run(["bash", str(REPO / "recipes" / "ego3s_grpo_qwen2_5_vl_3b.sh")], capture_output=True,
                            text=True, timeout=600, cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stdout + result.stderr[-2000:]
    assert f"MODEL: {tmp_path / 'no-such-model'} does not exist" in result.stdout
    assert "verl.trainer.main_ppo" not in result.stderr and "Hydra" not in result.stderr
