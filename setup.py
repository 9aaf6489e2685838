"""Build glue that setup.cfg cannot express: package discovery and the start-up ``.pth`` hook.

The hook (``plugins/startup_hook.pth``) must land at the root of site-packages in both install modes:
- ``pip install .``: ``build_py`` copies it into the wheel's root;
- ``pip install -e .``: setuptools builds editable wheels through ``editable_wheel``, which ignores ``build_py``
  outputs; we wrap the strategy it selects so the editable wheel also carries the file (the strategy hook is
  private setuptools API, hence the tested range in pyproject.toml).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

HERE = Path(__file__).parent
PTH_SOURCE = HERE / "plugins" / "startup_hook.pth"
PTH_NAME = "egoforge-startup.pth"  # sorts after setuptools' "__editable__.*.pth", which sets up the import path
ROOTS = {"egoforge": "plugins", "egoforge.rewards": "rewards", "egoforge.tools": "tools"}


def discover_packages():
    packages = []
    for name, folder in ROOTS.items():
        root = HERE / folder
        for init in sorted(root.rglob("__init__.py")):
            rel = init.parent.relative_to(root)
            if any(part.startswith((".", "_")) or part == "__pycache__" for part in rel.parts):
                continue
            packages.append(".".join((name, *rel.parts)))
    return packages


class BuildPyWithPth(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / PTH_NAME
        target.write_text(PTH_SOURCE.read_text())

    def get_outputs(self, include_bytecode=True):
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib) / PTH_NAME)]


class _StrategyWithPth:
    """Wraps setuptools' editable strategy to add our .pth to the editable wheel."""

    def __init__(self, strategy):
        self._strategy = strategy

    def __call__(self, wheel, files, mapping):
        self._strategy(wheel, files, mapping)
        wheel.writestr(PTH_NAME, PTH_SOURCE.read_text())

    def __enter__(self):
        return self._strategy.__enter__()

    def __exit__(self, *exc):
        return self._strategy.__exit__(*exc)


class EditableWheelWithPth(editable_wheel):
    def _select_strategy(self, name, tag, build_lib):
        return _StrategyWithPth(super()._select_strategy(name, tag, build_lib))


setup(packages=discover_packages(), cmdclass={"build_py": BuildPyWithPth, "editable_wheel": EditableWheelWithPth})
