"""Pre-launch checks (``egoforge doctor``): is this environment the one a recipe needs, with egoforge's extensions
really reachable by the upstream tools, and do the recipe's local inputs exist?

Each upstream tool finds egoforge through a side door that fails quietly when broken: LLaMA-Factory through the
start-up ``.pth`` hook, verl through its ``verl.plugins`` entry point (verl logs a failed plugin load at DEBUG and
trains on with its default reward manager), lmms-eval through its ``lmms_eval.models`` entry point. So every check
loads the extension the way the tool would and then looks for the registered names. Every check returns a
:class:`Check`; none raises.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")
# Recipe keys that name inputs which must exist before a run (outputs such as output_dir are created by the run).
INPUT_KEY = re.compile(r"(^|_)(model_name_or_path|adapter_name_or_path|dataset_dir|media_dir|media_root|root|"
                       r"dir|path|files|frames_root|pose_dir|deepspeed|model|init_from|clip_model)$")
OUTPUT_KEY = re.compile(r"(^|_)(output_dir|out|save_dir|logging_dir|export_dir|cache_dir|default_local_dir)$")
SHELL_DEFAULT = re.compile(r"^([A-Z_]+)=\$\{\1:-([^}]+)\}", re.MULTILINE)
SHELL_INPUTS = {"MODEL", "CLIP_MODEL", "TRAIN_FILES", "POOL_FILES", "VAL_FILES", "CSM_REPORT", "SFT_MODEL"}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True  # a failed optional check is a warning


def environment_kind() -> str | None:
    """Which locked environment this is (docs/environments.md): LLaMA-Factory marks sft, vLLM marks rl."""
    if _installed("llamafactory"):
        return "sft"
    if _installed("vllm"):
        return "rl"
    return None


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def read_lock(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def lock_drift(pins: dict[str, str]) -> list[str]:
    """Packages whose installed version differs from the lock (local build tags such as +cu130 ignored)."""
    from packaging.version import Version

    drifted = []
    for name, pinned in sorted(pins.items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            drifted.append(f"{name} missing (lock {pinned})")
            continue
        if Version(installed).public != Version(pinned).public:
            drifted.append(f"{name} {installed} (lock {pinned})")
    return drifted


def check_lock(kind: str | None, repo: Path = REPO) -> Check:
    if kind is None:
        return Check("lock", False, "neither LLaMA-Factory (sft) nor vLLM (rl) is installed: not a locked environment",
                     "make setup (sft) or make setup-rl (rl); see docs/environments.md", required=False)
    lock = repo / "locks" / f"{kind}.txt"
    if not lock.is_file():
        return Check("lock", True, f"{kind} environment; no {lock} to compare with (installed from a wheel?)",
                     required=False)
    drifted = lock_drift(read_lock(lock))
    if drifted:
        shown = ", ".join(drifted[:8]) + (f" and {len(drifted) - 8} more" if len(drifted) > 8 else "")
        return Check("lock", False, f"{kind} environment differs from {lock.name}: {shown}",
                     f"make {'setup' if kind == 'sft' else 'setup-rl'} (re-syncs the venv to the lock)")
    return Check("lock", True, f"{kind} environment matches locks/{kind}.txt")


def check_llamafactory_hook() -> Check:
    if not _installed("llamafactory"):
        return Check("llamafactory hook", True, "LLaMA-Factory not installed here (not needed in this environment)",
                     required=False)
    if os.environ.get("EGOFORGE_DISABLE_LF_HOOK"):
        return Check("llamafactory hook", False, "EGOFORGE_DISABLE_LF_HOOK is set: egoforge templates are off",
                     "unset EGOFORGE_DISABLE_LF_HOOK")
    try:
        templates = importlib.import_module("llamafactory.data.template").TEMPLATES
    except Exception as error:
        return Check("llamafactory hook", False, f"llamafactory.data.template does not import: {error!r}",
                     "make setup")
    ours = sorted(name for name in templates if name.endswith("_ego_frames"))
    if not ours:
        return Check("llamafactory hook", False, "egoforge's templates are not registered (the start-up .pth "
                     "hook did not run)", "reinstall egoforge: make setup (or pip install -e .)")
    return Check("llamafactory hook", True, f"templates registered: {', '.join(ours)}")


def check_verl_plugin() -> Check:
    """Load egoforge's verl.plugins entry point as verl does, then look for the registered names."""
    if not _installed("verl"):
        return Check("verl plugin", True, "verl not installed here (not needed in this environment)", required=False)
    points = [ep for ep in metadata.entry_points(group="verl.plugins") if ep.name == "egoforge"]
    if not points:
        return Check("verl plugin", False, "no 'egoforge' entry point in group verl.plugins",
                     "reinstall egoforge into this environment (make setup / make setup-rl)")
    if os.environ.get("EGOFORGE_DISABLE_VERL_PLUGIN"):
        return Check("verl plugin", False, "EGOFORGE_DISABLE_VERL_PLUGIN is set", "unset EGOFORGE_DISABLE_VERL_PLUGIN")
    if os.environ.get("VERL_USE_EXTERNAL_PLUGINS", "auto").strip().lower() == "none":
        return Check("verl plugin", False, "VERL_USE_EXTERNAL_PLUGINS=none: verl will not load egoforge",
                     "unset VERL_USE_EXTERNAL_PLUGINS")
    try:
        points[0].load()
        importlib.import_module("verl.experimental.reward_loop.reward_manager")  # fires egoforge's registrations
        from verl.experimental.reward_loop.reward_manager.registry import get_reward_manager_cls
        from verl.trainer.ppo.v1 import get_trainer_cls
    except Exception as error:  # exactly what verl would have logged at DEBUG
        return Check("verl plugin", False, f"loading the verl plugin failed: {error!r}",
                     "fix the error above; verl would silently train with its default reward manager")
    missing = []
    for kind, name, lookup in (("reward manager", "ego3s_irl", get_reward_manager_cls),
                               ("trainer", "ego3s_ecr", get_trainer_cls)):
        try:
            lookup(name)
        except Exception:
            missing.append(f"{kind} {name}")
    if missing:
        return Check("verl plugin", False, f"not in verl's registries after loading the plugin: {', '.join(missing)}",
                     "reinstall egoforge into this environment")
    return Check("verl plugin", True, "reward manager ego3s_irl and trainer ego3s_ecr registered")


def check_lmms_model() -> Check:
    if not _installed("lmms_eval"):
        return Check("lmms-eval model", True, "lmms-eval not installed here (not needed in this environment)",
                     required=False)
    points = [ep for ep in metadata.entry_points(group="lmms_eval.models") if ep.name == "egoforge_vl"]
    if not points:
        return Check("lmms-eval model", False, "no 'egoforge_vl' entry point in group lmms_eval.models",
                     "reinstall egoforge: make setup")
    try:
        points[0].load()
    except Exception as error:
        return Check("lmms-eval model", False, f"the egoforge_vl entry point does not load: {error!r}", "make setup")
    return Check("lmms-eval model", True, "egoforge_vl model entry point loads")


def recipe_environment(recipe: Path) -> str | None:
    match = re.search(r"^# Environment: (sft|rl)\b", recipe.read_text(errors="replace"), re.MULTILINE)
    return match[1] if match else None


def recipe_inputs(recipe: Path) -> list[tuple[str, str]]:
    """(key, local path) pairs a recipe reads: yaml keys naming inputs, or a shell recipe's ${VAR:-default}s."""
    text = recipe.read_text(errors="replace")
    if recipe.suffix == ".sh":
        # the recipe reads ${NAME:-default}: an exported NAME wins, as it will when the script runs
        return [(name, os.environ.get(name) or value) for name, value in SHELL_DEFAULT.findall(text)
                if name in SHELL_INPUTS]
    return list(_yaml_inputs(yaml.safe_load(text) or {}, ""))


def _yaml_inputs(node, prefix: str) -> Iterable[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict | list):
                yield from _yaml_inputs(value, name + ".")
            elif (isinstance(value, str) and INPUT_KEY.search(str(key)) and not OUTPUT_KEY.search(str(key))
                  and ("/" in value or value.startswith("."))):
                yield name, value
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _yaml_inputs(value, f"{prefix}{index}.")


def check_recipe(recipe: Path, kind: str | None, cwd: Path) -> list[Check]:
    if not recipe.is_file():
        return [Check(f"recipe {recipe}", False, "not found", "pass a recipe file from recipes/")]
    checks = []
    wanted = recipe_environment(recipe)
    if wanted and kind and wanted != kind:
        checks.append(Check(f"{recipe.name}: environment", False, f"the recipe runs in '{wanted}', this is '{kind}'",
                            f"make {'setup' if wanted == 'sft' else 'setup-rl'} and use "
                            f"{'.venv' if wanted == 'sft' else '.venv-rl'}"))
    elif wanted:
        checks.append(Check(f"{recipe.name}: environment", True, f"runs in '{wanted}'"))
    for key, value in recipe_inputs(recipe):
        path = Path(value) if Path(value).is_absolute() else cwd / value
        hub_like = re.fullmatch(r"[\w.-]+/[\w.-]+", value) is not None and not path.exists()
        if path.exists():
            checks.append(Check(f"{recipe.name}: {key}", True, f"{value} exists"))
        elif hub_like and key.endswith(("model_name_or_path", "adapter_name_or_path")):
            checks.append(Check(f"{recipe.name}: {key}", False, f"'{value}' is not a local folder (a hub id needs the "
                                "network; egoforge runs offline)", f"download it and pass {key}=<local folder>"))
        else:
            checks.append(Check(f"{recipe.name}: {key}", False, f"{value} does not exist (relative to {cwd})",
                                f"create it or override {key}"))
    return checks


def run_checks(recipes: Iterable[Path] = (), cwd: Path | None = None) -> list[Check]:
    kind = environment_kind()
    checks = [Check("python", True, f"{sys.version.split()[0]} at {sys.executable}"), check_lock(kind),
              check_llamafactory_hook(), check_verl_plugin(), check_lmms_model()]
    for recipe in recipes:
        checks.extend(check_recipe(Path(recipe), kind, cwd or Path.cwd()))
    return checks
