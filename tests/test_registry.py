"""The small name -> object registry behind `egoforge list`."""

import pytest

from egoforge.registry import Registry


def test_register_get_and_idempotent_reregistration():
    reg = Registry("widget")

    @reg.register("a")
    def widget_a():
        """Makes A."""

    reg.add("a", widget_a)  # same object again: fine (modules can be imported twice)
    assert reg.get("a") is widget_a and reg.names() == ["a"] and reg.entries["a"].doc == "Makes A."
    with pytest.raises(ValueError, match="already registered"):
        reg.add("a", lambda: None)
    with pytest.raises(KeyError, match="registered: a"):
        reg.get("b")


# --- one registry for `egoforge list` and the verl plugin -----------------------------------------------------------

import ast  # noqa: E402
import importlib  # noqa: E402
import pkgutil  # noqa: E402
from pathlib import Path  # noqa: E402

from egoforge import registry  # noqa: E402
from egoforge.registry import VerlExtension  # noqa: E402

PLUGINS = Path(registry.__file__).resolve().parent
# verl's registration decorators, by the verl module they are imported from
VERL_DECORATORS = {"verl.experimental.reward_loop.reward_manager": "register",
                   "verl.experimental.reward_loop.reward_manager.registry": "register",
                   "verl.trainer.ppo.v1": "register_trainer",
                   "verl.trainer.ppo.v1.trainer_base": "register_trainer"}


def test_verl_plugin_installs_exactly_the_registry_records(monkeypatch):
    from egoforge.verl import plugin

    expected: dict[str, set[str]] = {}
    for _family, _name, extension in registry.verl_extensions():
        expected.setdefault(extension.after, set()).add(extension.module)
    assert {k: set(v) for k, v in plugin.registrations().items()} == expected
    assert expected, "no verl extension registered"
    extra = VerlExtension(path="egoforge.tests_only:Extra", after="verl.tests_only", table="verl.tests_only:TABLE",
                          setting="x=extra")
    monkeypatch.setitem(registry.VERL_TRAINERS.entries, "extra", registry.Entry("extra", extra))
    assert plugin.registrations()["verl.tests_only"] == ["egoforge.tests_only"]  # an added record is installed


def test_verl_families_hold_only_verl_extension_records(monkeypatch):
    monkeypatch.setitem(registry.REWARD_MANAGERS.entries, "bad", registry.Entry("bad", "egoforge.x:Y"))
    with pytest.raises(TypeError, match="reward manager 'bad' must be a VerlExtension"):
        registry.verl_extensions()


def verl_registering_modules(root: Path = PLUGINS) -> set[str]:
    """egoforge modules that import one of verl's registration decorators (so register something into verl)."""
    found = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and VERL_DECORATORS.get(node.module or "") in {
                    alias.name for alias in node.names}:
                found.add(".".join(("egoforge",) + path.relative_to(root).with_suffix("").parts))
    return found


def test_every_module_that_registers_into_verl_has_a_registry_record(tmp_path):
    """A class decorated with verl's register/register_trainer but missing from egoforge.verl.register fails here."""
    recorded = {extension.module for _f, _n, extension in registry.verl_extensions()}
    assert verl_registering_modules() == recorded
    (tmp_path / "extra.py").write_text("from verl.trainer.ppo.v1 import register_trainer\n")
    assert verl_registering_modules(tmp_path) == {"egoforge.extra"}  # the scan can find one


@pytest.mark.slow
def test_verl_holds_exactly_the_records_after_import():
    """Live: after `import verl` (the entry point) and every egoforge.verl module, egoforge's classes in verl's
    registries are exactly the registry's records, under the same names."""
    pytest.importorskip("verl")
    import egoforge.verl as package

    for module in pkgutil.walk_packages(package.__path__, "egoforge.verl."):
        importlib.import_module(module.name)
    records = registry.verl_extensions()
    tables = {extension.table for _f, _n, extension in records}
    in_verl = {(table, name, cls) for table in tables for name, cls in registry.resolve(table).items()
               if cls.__module__.startswith("egoforge.")}
    assert in_verl == {(extension.table, name, extension.load()) for _f, name, extension in records}


def test_list_shows_every_verl_extension_with_its_setting(capsys):
    from egoforge.tools.cli import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for family, name, extension in registry.verl_extensions():
        section = out.split(f"{family}s:\n", 1)[1]
        assert any(line.split()[0] == name and line.endswith(f"({extension.setting})")
                   for line in section.splitlines() if line.startswith("  ")), (family, name)


def test_the_verl_plugin_never_raises(monkeypatch, capsys):
    """`import verl` must survive a broken extension module and a broken registry (it only warns, naming them)."""
    from egoforge.verl import plugin

    plugin._register(["egoforge.no_such_extension"])
    assert "could not register egoforge.no_such_extension into verl" in capsys.readouterr().err

    def broken():
        raise RuntimeError("registry broken")

    monkeypatch.setattr(registry, "verl_extensions", broken)
    importlib.reload(plugin)  # what the entry point does, with a registry that raises
    assert "verl plugin not installed: RuntimeError('registry broken')" in capsys.readouterr().err


def test_providers_are_exactly_the_register_modules_of_the_areas():
    """One registration module name per area: every ``plugins/<area>/register.py`` is a provider and every provider
    exists, so a renamed registration module cannot silently drop out of ``egoforge list`` / ``egoforge train``."""
    from pathlib import Path

    from egoforge import registry

    plugins = Path(registry.__file__).parent
    on_disk = {f"egoforge.{p.parent.name}.register" for p in plugins.glob("*/register.py")}
    on_disk.discard("egoforge.llamafactory.register")  # LLaMA-Factory's hook registers into LLaMA-Factory itself
    assert set(registry.PROVIDERS) == on_disk
