"""egoforge's ``verl.plugins`` entry point: ``import verl`` imports this module in every process (driver, Ray actors,
rollout servers), so it stays cheap and never raises.

It imports nothing from verl. It installs exactly the verl extensions recorded in ``egoforge.registry`` (filled by
``egoforge.verl.register``; ``egoforge list`` shows the same records): each class's module is imported right
after the verl module that creates its registry is first imported in that process, e.g.

* ``verl.experimental.reward_loop.reward_manager`` -> reward manager ``ego3s_irl``
  (``reward.reward_manager.name=ego3s_irl``);
* ``verl.trainer.ppo.v1`` -> trainer ``ego3s_ecr`` (``trainer.v1.trainer_mode=ego3s_ecr``).

If a registry is already imported (the plugin loaded late, e.g. through ``VERL_USE_EXTERNAL_MODULES``), the
registration runs at once. ``EGOFORGE_DISABLE_VERL_PLUGIN=1`` switches it off.
"""

from __future__ import annotations

import os
import sys


def registrations() -> dict[str, list[str]]:
    """verl module -> the egoforge modules to import right after it, from the registry's verl extensions."""
    from egoforge.registry import verl_extensions

    plan: dict[str, list[str]] = {}
    for _family, _name, extension in verl_extensions():
        modules = plan.setdefault(extension.after, [])
        if extension.module not in modules:
            modules.append(extension.module)
    return plan


def _register(providers: list[str]) -> None:
    import importlib

    for provider in providers:
        try:
            importlib.import_module(provider)
        except Exception as exc:  # a broken extension must never break a stock verl run
            sys.stderr.write(f"egoforge: could not register {provider} into verl: {exc!r}\n")


def install() -> None:
    if os.environ.get("EGOFORGE_DISABLE_VERL_PLUGIN"):
        return
    from egoforge._post_import import when_imported

    callbacks = {target: (lambda _module, providers=providers: _register(providers))
                 for target, providers in registrations().items()}
    when_imported(callbacks, tag="egoforge-verl")


try:
    install()
except Exception as _exc:  # never fail `import verl`
    sys.stderr.write(f"egoforge: verl plugin not installed: {_exc!r}\n")
