"""Run a callback right after a module is first executed, in any process, without importing that module.

Shared by the LLaMA-Factory start-up hook and the verl plugin, both of which run at interpreter or ``import verl``
time: this module imports nothing (``importlib.abc`` alone would cost ~13 ms per interpreter start), and its
finder and loader are duck-typed.
"""

from __future__ import annotations

import sys


class _CallbackLoader:
    """Delegates to the real loader, then runs a callback on the freshly executed module."""

    def __init__(self, loader, callback) -> None:
        self._loader = loader
        self._callback = callback

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        self._callback(module)

    def __getattr__(self, name: str):  # get_data, get_filename, is_package, ... for importlib.resources & co
        return getattr(self._loader, name)


class PostImportFinder:
    """Meta-path finder that wraps the loaders of the named modules (and of nothing else)."""

    def __init__(self, callbacks: dict, tag: str) -> None:
        self.callbacks = dict(callbacks)
        self.tag = tag

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


def when_imported(callbacks: dict, tag: str) -> None:
    """Call ``callbacks[name](module)`` once module ``name`` has executed: now if it already has, else on import.

    ``tag`` makes repeated calls idempotent (a second finder with the same tag is never installed).
    """
    if any(getattr(finder, "tag", None) == tag for finder in sys.meta_path):
        return
    pending = {}
    for name, callback in callbacks.items():
        if name in sys.modules:
            callback(sys.modules[name])
        else:
            pending[name] = callback
    if pending:
        sys.meta_path.insert(0, PostImportFinder(pending, tag))
