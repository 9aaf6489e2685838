"""Name -> object registries for egoforge's extension families (rewards, trainers, verl extensions, ...).

One small registry per family, in the spirit of verl's reward-manager registry: registering the *same* object
twice is a no-op (modules may be imported more than once), a *different* object under a taken name is an error,
and lookups of unknown names list the valid ones. ``egoforge list`` shows every family.

The verl families (:data:`VERL_FAMILIES`) hold :class:`VerlExtension` records, not classes: the verl plugin installs
exactly these records (it imports each class's module right after verl creates the registry it goes into), so
``egoforge list`` shows what ``import verl`` registers without importing verl. Each area fills the registries from
its ``register.py`` (:data:`PROVIDERS`).

This module imports only the standard library: the verl plugin reads it on every ``import verl``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Entry:
    name: str
    obj: Any
    doc: str = ""


@dataclass
class Registry:
    family: str
    entries: dict[str, Entry] = field(default_factory=dict)

    def register(self, name: str, doc: str = "") -> Callable[[Any], Any]:
        def decorator(obj: Any) -> Any:
            self.add(name, obj, doc)
            return obj

        return decorator

    def add(self, name: str, obj: Any, doc: str = "") -> None:
        existing = self.entries.get(name)
        if existing is not None and existing.obj is not obj and _qualname(existing.obj) != _qualname(obj):
            raise ValueError(f"{self.family} {name!r} is already registered to {_qualname(existing.obj)}")
        first_line = (doc or getattr(obj, "__doc__", None) or "").strip().splitlines()
        self.entries[name] = Entry(name, obj, first_line[0] if first_line else "")

    def get(self, name: str) -> Any:
        if name not in self.entries:
            known = ", ".join(sorted(self.entries)) or "none"
            raise KeyError(f"unknown {self.family} {name!r}; registered: {known}")
        return self.entries[name].obj

    def names(self) -> list[str]:
        return sorted(self.entries)


@dataclass(frozen=True)
class VerlExtension:
    """A class egoforge adds to one of verl's registries, named by import path so that nothing here imports verl.

    ``path`` is ``"module:attr"`` of the class; importing ``module`` runs verl's registration decorator.
    ``after`` is the verl module whose first import creates that registry (the plugin imports ``module`` right
    after it), ``table`` is ``"module:attr"`` of verl's name -> class dict (to check what verl holds), and
    ``setting`` is the config override that selects the class.
    """

    path: str
    after: str
    table: str
    setting: str

    @property
    def module(self) -> str:
        return self.path.partition(":")[0]

    def load(self) -> Any:
        """The class itself (imports its module, and so verl)."""
        return resolve(self.path)

    def registered_in_verl(self) -> dict[str, Any]:
        """verl's name -> class table this extension goes into (imports verl)."""
        return resolve(self.table)


def resolve(path: str) -> Any:
    """The object at import path ``"module:attr"`` (imports the module)."""
    module, _, attr = path.partition(":")
    if not module or not attr:
        raise ValueError(f"not a 'module:attr' import path: {path!r}")
    return getattr(importlib.import_module(module), attr)


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


REWARDS = Registry("reward")
# Trainers: callables ``run(recipe: dict, dry_run: bool = False) -> int`` used by ``egoforge train``.
TRAINERS = Registry("trainer")
# verl extensions (VerlExtension records): what egoforge's ``verl.plugins`` entry point installs into verl.
REWARD_MANAGERS = Registry("verl reward manager")
VERL_TRAINERS = Registry("verl trainer")
VERL_FAMILIES = (REWARD_MANAGERS, VERL_TRAINERS)
# The provider of the verl families; the verl plugin imports it alone (it is as cheap as this module).
VERL_PROVIDER = "egoforge.verl.register"

# Modules whose import fills the registries; ``load_all`` imports them (missing optional ones are skipped).
PROVIDERS: list[str] = [
    "egoforge.egom2p.register",
    "egoforge.lego.register",
    "egoforge.egoagent.register",
    "egoforge.ego3s.register",
    "egoforge.trl_grpo.register",
    VERL_PROVIDER,
]


def verl_extensions() -> list[tuple[str, str, VerlExtension]]:
    """(family, name, extension) for every verl extension, after importing their provider."""
    importlib.import_module(VERL_PROVIDER)
    found = []
    for registry in VERL_FAMILIES:
        for name in registry.names():
            extension = registry.get(name)
            if not isinstance(extension, VerlExtension):
                raise TypeError(f"{registry.family} {name!r} must be a VerlExtension, not {type(extension).__name__}")
            found.append((registry.family, name, extension))
    return found


def load_all() -> list[str]:
    """Import every provider module so its registrations run; returns the import errors as text."""
    errors = []
    for module in PROVIDERS:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            errors.append(f"{module}: {exc}")
    return errors
