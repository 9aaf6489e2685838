"""Interpreter start-up hook, imported by ``egoforge-startup.pth`` in every Python process of the environment.

It must stay cheap: it imports nothing heavy and only installs a meta-path finder that waits for LLaMA-Factory.
When ``llamafactory.data.template`` finishes executing (in the CLI process, or in each torchrun worker, which
re-imports everything), egoforge's templates and multimodal plugins are registered into LLaMA-Factory's own
registries. LLaMA-Factory has no plugin loader, so this is how ``llamafactory-cli train`` sees them unpatched.
Set ``EGOFORGE_DISABLE_LF_HOOK=1`` to switch it off.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not `from typing import ...`: typing alone costs ~4 ms of every interpreter start
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

LF_TEMPLATE_MODULE = "llamafactory.data.template"


# Plain duck-typed finder/loader classes: importing importlib.abc would cost ~13 ms in every interpreter start.
class _CallbackLoader:
    """Delegates to the real loader, then runs a callback on the freshly executed module."""

    def __init__(self, loader, callback: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._callback = callback

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._callback(module)

    def __getattr__(self, name: str):  # get_data, get_filename, is_package, ... for importlib.resources & co
        return getattr(self._loader, name)


class PostImportFinder:
    """Runs ``callbacks[name](module)`` right after module ``name`` is first executed."""

    def __init__(self, callbacks: dict[str, Callable[[ModuleType], None]]) -> None:
        self.callbacks = dict(callbacks)

    def find_spec(self, fullname, path, target=None):
        callback = self.callbacks.get(fullname)
        if callback is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _CallbackLoader(spec.loader, callback)
                return spec
        return None


def _register_into_llamafactory(_module: ModuleType) -> None:
    try:
        from egoforge.llamafactory.register import register_all

        register_all()
    except Exception as exc:  # never break a stock LLaMA-Factory run because of our extension
        sys.stderr.write(f"egoforge: could not register templates into LLaMA-Factory: {exc!r}\n")


def install() -> PostImportFinder | None:
    """Install the finder once per process (idempotent); if LLaMA-Factory is already imported, register now."""
    for finder in sys.meta_path:
        if isinstance(finder, PostImportFinder) or type(finder).__name__ == "PostImportFinder":
            return None
    if LF_TEMPLATE_MODULE in sys.modules:
        _register_into_llamafactory(sys.modules[LF_TEMPLATE_MODULE])
        return None
    finder = PostImportFinder({LF_TEMPLATE_MODULE: _register_into_llamafactory})
    sys.meta_path.insert(0, finder)
    return finder


install()
