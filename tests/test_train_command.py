"""`egoforge train`: recipe loading, typed configs with clear errors, dispatch to a registered trainer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from egoforge import registry
from egoforge.tools.cli import main as cli
from egoforge.train.recipe import RecipeError, build_config, load_recipe


@dataclass
class Optim:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class Config:
    output_dir: str
    steps: int = 10
    optim: Optim = field(default_factory=Optim)
    note: str | None = None


def test_overrides_are_yaml_typed_and_nested(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("trainer: t\noutput_dir: out\noptim:\n  lr: 0.1\n")
    recipe = load_recipe(path, ["steps=5", "optim.lr=2e-4", "optim.betas=[0.8, 0.9]", "note=null"])
    config = build_config(Config, {k: v for k, v in recipe.items() if k != "trainer"})
    assert config == Config("out", 5, Optim(2e-4, (0.8, 0.9)), None)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"output_dir": "o", "stpes": 3}, "unknown key(s) ['stpes']"),
        ({"output_dir": "o", "steps": "ten"}, "recipe.steps: expected int"),
        ({"output_dir": "o", "optim": {"lr": "fast"}}, "recipe.optim.lr: expected float"),
        ({"steps": 3}, "output_dir"),
    ],
)
def test_bad_configs_name_the_key(values, message):
    with pytest.raises(RecipeError, match=re.escape(message)):
        build_config(Config, values)


def test_bad_recipe_files(tmp_path):
    with pytest.raises(RecipeError, match="recipe not found"):
        load_recipe(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(RecipeError, match="mapping"):
        load_recipe(tmp_path / "list.yaml")
    (tmp_path / "ok.yaml").write_text("a: 1\n")
    with pytest.raises(RecipeError, match="not key=value"):
        load_recipe(tmp_path / "ok.yaml", ["novalue"])


def test_dispatch_to_a_registered_trainer(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake_trainer(recipe, dry_run=False):
        """A trainer for this test."""
        seen.update(recipe=recipe, dry_run=dry_run)
        return 0

    monkeypatch.setitem(registry.TRAINERS.entries, "test_fake", registry.Entry("test_fake", fake_trainer))
    path = tmp_path / "r.yaml"
    path.write_text("trainer: test_fake\noutput_dir: out\n")
    assert cli(["train", str(path), "steps=2", "--dry-run"]) == 0
    assert seen == {"recipe": {"output_dir": "out", "steps": 2}, "dry_run": True}
    path.write_text("trainer: nope\n")
    assert cli(["train", str(path)]) == 2
    assert "unknown trainer 'nope'" in capsys.readouterr().err
    path.write_text("output_dir: out\n")
    assert cli(["train", str(path)]) == 2
