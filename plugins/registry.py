"""Name -> object registries for egoforge's extension families (rewards, trainers, reward managers, ...).

One small registry per family, in the spirit of verl's reward-manager registry: registering the *same* object
twice is a no-op (modules may be imported more than once), a *different* object under a taken name is an error,
and lookups of unknown names list the valid ones. ``egoforge list`` shows every family.
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


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


REWARDS = Registry("reward")
# Trainers: callables ``run(recipe: dict, dry_run: bool = False) -> int`` used by ``egoforge train``.
TRAINERS = Registry("trainer")
REWARD_MANAGERS = Registry("verl reward manager")

# Modules whose import fills the registries; ``load_all`` imports them (missing optional ones are skipped).
PROVIDERS: list[str] = [
    "egoforge.egom2p.trainers",
    "egoforge.lego.trainer",
    "egoforge.egoagent.register",
    "egoforge.ego3s.registrations",
]


def load_all() -> list[str]:
    """Import every provider module so its registrations run; returns the import errors as text."""
    errors = []
    for module in PROVIDERS:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            errors.append(f"{module}: {exc}")
    return errors
