"""egoforge's ``verl.plugins`` entry point: ``import verl`` imports this module in every process (driver, Ray actors,
rollout servers), so it stays cheap and never raises.

It imports nothing from verl. It arranges that egoforge's registrations run right after verl's own registries
are first imported in that process:

* ``verl.experimental.reward_loop.reward_manager`` -> reward manager ``ego3s_irl``
  (``reward.reward_manager.name=ego3s_irl``);
* ``verl.trainer.ppo.v1`` -> trainer ``ego3s_ecr`` (``trainer.v1.trainer_mode=ego3s_ecr``).

If a registry is already imported (the plugin loaded late, e.g. through ``VERL_USE_EXTERNAL_MODULES``), the
registration runs at once. ``EGOFORGE_DISABLE_VERL_PLUGIN=1`` switches it off.
"""

from __future__ import annotations

import os
import sys

REGISTRATIONS = {
    "verl.experimental.reward_loop.reward_manager": "egoforge.verl.reward_manager",
    "verl.trainer.ppo.v1": "egoforge.verl.trainer",
}


def _register(provider: str) -> None:
    try:
        import importlib

        importlib.import_module(provider)
    except Exception as exc:  # a broken extension must never break a stock verl run
        sys.stderr.write(f"egoforge: could not register {provider} into verl: {exc!r}\n")


class _RunAfterExec:
    """Loader wrapper: execute the real module, then import the egoforge provider that registers into it."""

    def __init__(self, loader, provider: str) -> None:
        self._loader = loader
        self._provider = provider

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        _register(self._provider)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)


class VerlRegistrationFinder:
    """Meta-path finder that wraps the loaders of verl's registry modules (and nothing else)."""

    def __init__(self, targets: dict[str, str]) -> None:
        self.targets = dict(targets)

    def find_spec(self, fullname, path, target=None):
        provider = self.targets.get(fullname)
        if provider is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _RunAfterExec(spec.loader, provider)
                return spec
        return None


def install() -> None:
    if os.environ.get("EGOFORGE_DISABLE_VERL_PLUGIN"):
        return
    if any(type(f).__name__ == "VerlRegistrationFinder" for f in sys.meta_path):
        return
    pending = {}
    for target, provider in REGISTRATIONS.items():
        if target in sys.modules:
            _register(provider)
        else:
            pending[target] = provider
    if pending:
        sys.meta_path.insert(0, VerlRegistrationFinder(pending))


try:
    install()
except Exception as _exc:  # never fail `import verl`
    sys.stderr.write(f"egoforge: verl plugin not installed: {_exc!r}\n")
