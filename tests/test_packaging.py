"""The start-up hook ships and fires in both install modes, is cheap, can be switched off, and is idempotent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OUR_TEMPLATES = {"qwen2_vl_ego_frames", "qwen3_vl_ego_frames", "qwen3_vl_nothink_ego_frames"}
PROBE = (
    "import json, sys; import llamafactory.data.template as t, llamafactory.data.mm_plugin as m, egoforge; "
    "print(json.dumps({'templates': sorted(n for n in t.TEMPLATES if 'ego' in n), "
    "'plugins': sorted(n for n in m.PLUGINS if 'ego' in n), 'egoforge': egoforge.__file__}))"
)


def _source_copy(tmp_path: Path) -> Path:
    """The checkout's files (tracked and untracked-not-ignored) copied aside: building writes egg-info/build
    folders into the source tree, and a stale egoforge.egg-info at the repo root would shadow the installed
    entry points for any process started there."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    target = tmp_path / "src"
    for rel in files:
        if (REPO / rel).is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, target / rel)
    return target


def _run(code: str, env: dict | None = None, args: tuple = ()) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args, "-c", code], capture_output=True, text=True, cwd="/",
                          env={**os.environ, **(env or {})}, timeout=300)


def _probe(env: dict | None = None, args: tuple = (), prefix: str = "") -> dict:
    result = _run(prefix + PROBE, env, args)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_hook_registers_templates_when_llamafactory_is_imported():
    found = _probe()
    assert set(found["templates"]) >= OUR_TEMPLATES
    assert {"ego_frames_qwen2_vl", "ego_frames_qwen3_vl"} <= set(found["plugins"])


def test_hook_registers_templates_when_a_script_imports_egoforges_plugins_first():
    """``import egoforge.llamafactory.plugins`` before LLaMA-Factory: its own LLaMA-Factory import fires the hook
    while the plugin classes do not exist yet; the registration is finished when the module is, without an error."""
    result = _run("import egoforge.llamafactory.plugins\n" + PROBE)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "could not register" not in result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(found["templates"]) >= OUR_TEMPLATES
    assert {"ego_frames_qwen2_vl", "ego_frames_qwen3_vl"} <= set(found["plugins"])


def test_hook_can_be_switched_off():
    found = _probe(env={"EGOFORGE_DISABLE_LF_HOOK": "1"})
    assert found["templates"] == [] and found["plugins"] == []


def test_hook_imports_nothing_heavy_at_start():
    result = _run("import sys; print(sorted(m for m in ('torch', 'llamafactory', 'transformers', "
                  "'egoforge._startup') if m in sys.modules))")
    assert result.stdout.split() == ["['egoforge._startup']"]


def test_register_all_is_idempotent():
    import llamafactory.data.template as lf_template

    from egoforge.llamafactory.register import register_all

    register_all()
    assert register_all() == []
    assert set(lf_template.TEMPLATES) >= OUR_TEMPLATES
    # The copies keep the stock template's behaviour and only swap the mm plugin.
    ours, stock = lf_template.TEMPLATES["qwen3_vl_nothink_ego_frames"], lf_template.TEMPLATES["qwen3_vl_nothink"]
    assert ours.format_user == stock.format_user and ours.stop_words == stock.stop_words
    assert type(ours.mm_plugin).__name__ == "EgoFramesQwen3VLPlugin"


@pytest.mark.slow
def test_regular_wheel_ships_the_pth_and_the_hook_fires_from_it(tmp_path):
    """`pip install .`: the wheel carries egoforge-startup.pth at its root; installed, it registers the templates."""
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                            str(wheels), str(_source_copy(tmp_path))], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next(wheels.glob("egoforge-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "egoforge-startup.pth" in names
    assert "egoforge/tools/cli.py" in names and "egoforge/rewards/__init__.py" in names
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target),
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    # A clean interpreter (-S) that sees the environment's packages as plain paths (so this checkout's editable
    # finder is not installed) and the wheel's folder as a real site dir (so its .pth files run).
    site_packages = sysconfig.get_paths()["purelib"]
    prefix = f"import sys, site; sys.path.append({site_packages!r}); site.addsitedir({str(target)!r}); "
    found = _probe(args=("-S",), prefix=prefix)
    assert found["egoforge"].startswith(str(target))
    assert set(found["templates"]) >= OUR_TEMPLATES


@pytest.mark.slow
def test_editable_wheel_ships_the_pth(tmp_path):
    """`pip install -e .`: setuptools' PEP 660 editable wheel also carries the .pth (the env itself is editable)."""
    source = _source_copy(tmp_path)
    out = tmp_path / "wheel"
    out.mkdir()
    code = f"import sys; from setuptools import build_meta as b; print(b.build_editable({str(out)!r}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=source, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    wheel = out / result.stdout.strip().splitlines()[-1]
    names = zipfile.ZipFile(wheel).namelist()
    assert "egoforge-startup.pth" in names
    assert any(n.startswith("__editable__") and n.endswith(".pth") for n in names)
    # The finder setuptools writes maps the namespace onto the card's folders.
    finder = next(n for n in names if n.endswith("_finder.py"))
    mapping = zipfile.ZipFile(wheel).read(finder).decode()
    assert str(source / "plugins") in mapping and str(source / "rewards") in mapping
