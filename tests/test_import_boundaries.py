"""The two locked environments hold different trainer stacks, so the code each side runs must not import the other:
verl-side modules (the verl plugin, Ego3S, the rewards) import without LLaMA-Factory, and the LLaMA-Factory plugin
imports without verl. Each check runs in a fresh interpreter whose import system refuses the other stack."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

VERL_SIDE = ("egoforge.verl", "egoforge.ego3s", "egoforge.rewards")
LLAMAFACTORY_SIDE = ("egoforge.llamafactory",)

PROBE = r"""
import importlib, importlib.abc, json, pkgutil, sys

FORBIDDEN = {forbidden!r}

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == FORBIDDEN:
            raise ImportError(f"{{name}} is forbidden on this side")
        return None

sys.meta_path.insert(0, Refuse())
failures = {{}}
for package_name in {packages!r}:
    try:
        package = importlib.import_module(package_name)
    except Exception as error:
        failures[package_name] = f"{{type(error).__name__}}: {{error}}"
        continue
    paths = getattr(package, "__path__", [])
    names = [package_name] + [m.name for m in pkgutil.walk_packages(paths, package_name + ".")]
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as error:  # report every module, not only the first
            failures[name] = f"{{type(error).__name__}}: {{error}}"
print(json.dumps(failures))
"""


def import_all_refusing(packages: tuple[str, ...], forbidden: str) -> dict[str, str]:
    # EGOFORGE_DISABLE_LF_HOOK: the start-up hook only acts once llamafactory is imported; keep it out of the probe.
    result = subprocess.run([sys.executable, "-c", PROBE.format(packages=packages, forbidden=forbidden)],
                            capture_output=True, text=True, timeout=600, cwd="/",
                            env={"EGOFORGE_DISABLE_LF_HOOK": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_verl_side_imports_without_llamafactory():
    assert import_all_refusing(VERL_SIDE, "llamafactory") == {}


def test_llamafactory_side_imports_without_verl():
    pytest.importorskip("llamafactory")
    assert import_all_refusing(LLAMAFACTORY_SIDE, "verl") == {}


def test_the_probe_reports_a_forbidden_import():
    """The probe can fail: Ego3S's frame loader cannot import when Pillow is refused."""
    failures = import_all_refusing(("egoforge.ego3s.media",), "PIL")
    assert "forbidden" in failures["egoforge.ego3s.media"]


# --- one-way imports between areas (read from the source with ast, so lazy imports inside functions count too) ------

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
# (lower, upper): the upper area may import the lower one, never the reverse
ONE_WAY = [("eval", "lmms"),  # the lmms-eval tasks use EgoCross's protocol; the EgoCross evaluation knows no lmms-eval
           ("ego3s", "trl_grpo")]  # the TRL GRPO adapter runs Ego3S; Ego3S knows no TRL


def egoforge_imports(source: str, module: str) -> set[str]:
    """Absolute egoforge module names imported anywhere in ``source`` (``module`` is its own dotted name, for
    relative imports); ``from egoforge import lmms`` counts as ``egoforge.lmms``."""
    found = set()
    package = module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "egoforge" or name.startswith("egoforge.")}


def area_imports(area: str) -> dict[str, set[str]]:
    """egoforge module -> the egoforge modules it imports, for every module of ``plugins/<area>``."""
    result = {}
    for path in sorted((PLUGINS / area).rglob("*.py")):
        module = ".".join(("egoforge",) + path.relative_to(PLUGINS).with_suffix("").parts)
        result[module] = egoforge_imports(path.read_text(), module)
    return result


def imports_of(importer: str, imported: str) -> list[str]:
    target = f"egoforge.{imported}"
    return sorted(f"{module} imports {name}" for module, names in area_imports(importer).items() for name in names
                  if name == target or name.startswith(target + "."))


@pytest.mark.parametrize(("lower", "upper"), ONE_WAY)
def test_areas_import_one_way(lower, upper):
    assert imports_of(lower, upper) == []
    assert imports_of(upper, lower), f"{upper} no longer uses {lower}: drop the pair from ONE_WAY"


def test_the_import_walk_sees_lazy_relative_and_package_imports():
    source = ("def f():\n    from egoforge.lmms.suite import run\n"
              "from egoforge import lmms\nfrom .. import trl_grpo\nfrom .media import x\nimport egoforge.data\n")
    assert egoforge_imports(source, "egoforge.ego3s.sub.mod") == {
        "egoforge.lmms.suite", "egoforge.lmms.suite.run", "egoforge", "egoforge.lmms", "egoforge.ego3s",
        "egoforge.ego3s.trl_grpo", "egoforge.ego3s.sub.media", "egoforge.ego3s.sub.media.x", "egoforge.data"}
