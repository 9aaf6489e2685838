"""Recipes check their local paths before anything loads: one message per missing path naming the key, the path and
how to get it, for every `egoforge train` recipe family."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from egoforge.tools.cli import main as cli
from egoforge.train.recipe import LocalPath, RecipeError, check_local_paths, missing_local_paths

REPO = Path(__file__).resolve().parents[1]
TRAIN_RECIPES = sorted(p.name for p in (REPO / "recipes").glob("*.yaml")
                       if "trainer" in (yaml.safe_load(p.read_text()) or {}))


def test_missing_paths_name_key_path_and_how(tmp_path):
    (tmp_path / "there").mkdir()
    (tmp_path / "file.json").write_text("{}")
    recipe = {"model": str(tmp_path / "absent"), "data": {"roots": [str(tmp_path / "there"), str(tmp_path / "gone")],
                                                        "index": str(tmp_path / "file.json"), "unset": None},
              "folder_is_file": str(tmp_path / "file.json")}
    paths = [LocalPath("model", "make it with `egoforge make tiny-model clip --out DIR`"),
             LocalPath("data.roots", "extract frames"), LocalPath("data.index", "convert", kind="file"),
             LocalPath("data.unset", "never asked"), LocalPath("data.not_in_recipe", "never asked"),
             LocalPath("folder_is_file", "a folder")]
    assert missing_local_paths(recipe, paths) == [
        f"model = {tmp_path / 'absent'}: no such folder; make it with `egoforge make tiny-model clip --out DIR`",
        f"data.roots[1] = {tmp_path / 'gone'}: no such folder; extract frames",
        f"folder_is_file = {tmp_path / 'file.json'}: is a file, expected a folder; a folder"]
    with pytest.raises(RecipeError, match="missing local path"):
        check_local_paths(recipe, paths)
    check_local_paths({"model": str(tmp_path / "there")}, paths[:1])  # nothing missing: no error


def test_every_train_recipe_family_is_covered():
    families = {yaml.safe_load((REPO / "recipes" / name).read_text())["trainer"] for name in TRAIN_RECIPES}
    assert families == {"ego3s_trl_grpo", "egoagent_stage1", "egoagent_stage2", "egom2p", "egom2p_traj_tokenizer",
                        "egom2p_video_tokenizer", "lego_ldm"}


@pytest.mark.parametrize("name", TRAIN_RECIPES)
def test_a_recipe_with_missing_local_paths_stops_with_one_message(name, tmp_path, monkeypatch, capsys):
    from egoforge import registry

    registry.load_all()
    trainer = registry.TRAINERS.get(yaml.safe_load((REPO / "recipes" / name).read_text())["trainer"])
    assert getattr(trainer, "local_paths", ()), f"{name}: its trainer declares no local paths"
    monkeypatch.chdir(tmp_path)  # the recipe's relative data and model paths do not exist here
    assert cli(["train", str(REPO / "recipes" / name), f"output_dir={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"egoforge train: {REPO / 'recipes' / name}: missing local path(s)"), err
    assert "Traceback" not in err and "no such folder" in err or "no such file" in err
    assert not (tmp_path / "out").exists()  # stopped before anything ran
