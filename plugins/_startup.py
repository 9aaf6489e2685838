"""Interpreter start-up hook, imported by ``egoforge-startup.pth`` in every Python process of the environment.

It must stay cheap: it imports nothing heavy and only installs a meta-path finder that waits for LLaMA-Factory.
When ``llamafactory.data.template`` finishes executing (in the CLI process, or in each torchrun worker, which
re-imports everything), egoforge's templates and multimodal plugins are registered into LLaMA-Factory's own
registries. LLaMA-Factory has no plugin loader, so this is how ``llamafactory-cli train`` sees them unpatched.
Set ``EGOFORGE_DISABLE_LF_HOOK=1`` to switch it off.
"""

from __future__ import annotations

import os
import sys

from egoforge._post_import import when_imported

LF_TEMPLATE_MODULE = "llamafactory.data.template"


PLUGINS_MODULE = "egoforge.llamafactory.plugins"


def _register_into_llamafactory(_module) -> None:
    plugins = sys.modules.get(PLUGINS_MODULE)
    if plugins is not None and getattr(getattr(plugins, "__spec__", None), "_initializing", False):
        # A script imported egoforge's plugins first, and their own ``import llamafactory`` got here: the plugin
        # classes do not exist yet. The plugins module registers itself at its end (register_when_ready).
        return
    try:
        from egoforge.llamafactory.register import register_all

        register_all()
    except Exception as exc:  # never break a stock LLaMA-Factory run because of our extension
        sys.stderr.write(f"egoforge: could not register templates into LLaMA-Factory: {exc!r}\n")


def install() -> None:
    """Arrange the registration once per process (idempotent); if LLaMA-Factory is already imported, register now."""
    if os.environ.get("EGOFORGE_DISABLE_LF_HOOK"):
        return
    when_imported({LF_TEMPLATE_MODULE: _register_into_llamafactory}, tag="egoforge-llamafactory")


install()
