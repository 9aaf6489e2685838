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


def install() -> None:
    if os.environ.get("EGOFORGE_DISABLE_VERL_PLUGIN"):
        return
    from egoforge._post_import import when_imported

    callbacks = {target: (lambda _module, provider=provider: _register(provider))
                 for target, provider in REGISTRATIONS.items()}
    when_imported(callbacks, tag="egoforge-verl")


try:
    install()
except Exception as _exc:  # never fail `import verl`
    sys.stderr.write(f"egoforge: verl plugin not installed: {_exc!r}\n")
