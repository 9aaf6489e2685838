"""The two locked environments hold different trainer stacks, so the code each side runs must not import the other:
verl-side modules (the verl plugin, Ego3S, the rewards) import without LLaMA-Factory, and the LLaMA-Factory plugin
imports without verl. Each check runs in a fresh interpreter whose import system refuses the other stack."""

from __future__ import annotations

import json
import subprocess
import sys

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
