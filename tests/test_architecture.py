"""The one-way import rule of docs/architecture.md, checked on the source (ast, every import including the ones inside
functions): tools -> pipelines -> vlm / train / rewards -> data. A pipeline may use another pipeline only where the
table below says why; anything else is a layering error naming the module and line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = {"plugins": "egoforge", "rewards": "egoforge.rewards", "tools": "egoforge.tools"}

# Layer of each top-level egoforge package: a module may import its own package and any lower layer.
LAYERS = {
    0: {"(root)", "data", "registry", "_post_import"},  # the media layer and the plumbing every layer may use
    1: {"vlm", "train", "rewards"},  # generation, the accelerate trainer base, pure reward functions
    2: {"eval", "lmms", "ego3s", "verl", "trl_grpo", "lego", "egoagent", "egom2p", "inspect", "llamafactory"},
    3: {"testing", "doctor"},  # generated data / tiny models and the environment check span pipelines
    4: {"tools", "_startup"},  # entry points: the CLI and the interpreter start-up hook
}
LAYER_OF = {package: layer for layer, packages in LAYERS.items() for package in packages}

# The sideways imports between pipelines that are allowed, and why. Each goes one way only.
SIDEWAYS = {
    ("lmms", "eval"): "the suite's EgoCross task scores with EgoCross's own protocol",
    ("trl_grpo", "ego3s"): "the TRL adapter runs Ego3S's data, rewards and curriculum",
    ("verl", "ego3s"): "the verl adapter runs Ego3S's data, rewards and curriculum",
    ("inspect", "eval"): "the report shows EgoCross predictions scored by EgoCross's protocol",
}


def module_name(path: Path, root: Path = ROOT) -> str:
    relative = path.relative_to(root)
    parts = list(relative.with_suffix("").parts[1:])
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([SOURCE_ROOTS[relative.parts[0]], *parts])


def package_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 2 and parts[1] == "__version__":
        return "(root)"
    if parts[:2] == ["egoforge", "rewards"]:
        return "rewards"
    return parts[1] if len(parts) > 1 else "(root)"


def egoforge_imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every absolute egoforge import in the file, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("egoforge"):
            if node.module == "egoforge":  # ``from egoforge import registry`` imports egoforge.registry
                found += [(node.lineno, f"egoforge.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("egoforge")]
    return found


def layering_errors(root: Path = ROOT) -> list[str]:
    errors = []
    for top in SOURCE_ROOTS:
        for path in sorted((root / top).rglob("*.py")):
            source = package_of(module_name(path, root))
            for line, target_module in egoforge_imports(path):
                target = package_of(target_module)
                if target == source:
                    continue
                where = f"{path.relative_to(root)}:{line} imports {target_module}"
                if source not in LAYER_OF or target not in LAYER_OF:
                    errors.append(f"{where}: package {source if source not in LAYER_OF else target!r} has no layer")
                elif LAYER_OF[target] > LAYER_OF[source]:
                    errors.append(f"{where}: {source} (layer {LAYER_OF[source]}) reaches up to {target} "
                                  f"(layer {LAYER_OF[target]})")
                elif LAYER_OF[target] == LAYER_OF[source] and (source, target) not in SIDEWAYS:
                    errors.append(f"{where}: {source} -> {target} is a sideways import not in the allowed table")
    return errors


def test_every_package_has_a_layer():
    packages = {p.name for p in (ROOT / "plugins").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in (ROOT / "plugins").glob("*.py") if p.stem != "__init__"}
    assert (packages | modules) - set(LAYER_OF) == set()


def test_imports_flow_one_way():
    assert layering_errors() == []


def test_the_allowed_sideways_imports_go_one_way_only_and_are_all_used():
    assert {(b, a) for a, b in SIDEWAYS} & set(SIDEWAYS) == set()
    used = set()
    for top in SOURCE_ROOTS:
        for path in (ROOT / top).rglob("*.py"):
            source = package_of(module_name(path))
            used |= {(source, package_of(target)) for _, target in egoforge_imports(path)}
    assert set(SIDEWAYS) - used == set(), "an allowance nobody needs any more: remove it from the table"


def test_the_check_catches_an_upward_and_a_sideways_import(tmp_path):
    for top in SOURCE_ROOTS:
        (tmp_path / top).mkdir()
    (tmp_path / "plugins" / "data").mkdir()
    (tmp_path / "plugins" / "data" / "bad.py").write_text("def f():\n    from egoforge.lego.model import X\n")
    (tmp_path / "plugins" / "eval").mkdir()
    (tmp_path / "plugins" / "eval" / "bad.py").write_text("import egoforge.lmms.model\n")
    errors = layering_errors(tmp_path)
    assert any("plugins/data/bad.py:2" in e and "reaches up" in e for e in errors), errors
    assert any("plugins/eval/bad.py:1" in e and "sideways" in e for e in errors), errors


if __name__ == "__main__":  # pragma: no cover - `python tests/test_architecture.py` prints the violations
    print("\n".join(layering_errors()) or "imports flow one way")
    pytest.main([__file__, "-q"])
