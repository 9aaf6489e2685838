"""Every recipe says which locked environment runs it (docs/environments.md): verl + vLLM recipes need `rl`,
everything on LLaMA-Factory or the egoforge trainers needs `sft`."""

import re
from pathlib import Path

import pytest

RECIPE_DIR = Path(__file__).resolve().parents[1] / "recipes"
RECIPES = sorted(p for p in RECIPE_DIR.iterdir() if p.suffix in {".yaml", ".sh"})
DECLARED = re.compile(r"^# Environment: (sft|rl) \(`make (setup|setup-rl)`", re.MULTILINE)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_header_names_its_environment(recipe):
    text = recipe.read_text()
    header = text[: text.find("\n\n") if "\n\n" in text else len(text)]
    found = DECLARED.findall(header)
    assert len(found) == 1, f"{recipe.name}: its header must name one environment"
    environment, target = found[0]
    runs_verl = "verl.trainer.main_ppo" in text
    assert environment == ("rl" if runs_verl else "sft"), recipe.name
    assert target == {"sft": "setup", "rl": "setup-rl"}[environment]
