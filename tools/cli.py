"""The ``egoforge`` command: one entry point, one module per sub-command (imported lazily)."""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command -> module in egoforge.tools exposing HELP, add_arguments(parser) and main(args) -> int
COMMANDS = {
    "list": "listing",
    "download": "download",
    "validate": "validate",
    "prepare": "prepare",
    "evaluate": "evaluate",
    "demo": "demo",
    "train": "train",
    "lego": "lego",
    "egom2p": "egom2p",
    "inspect": "inspect_report",
    "egoagent": "egoagent",
    "ego3s": "ego3s",
    "select": "select",
    "doctor": "doctor",
    "make": "make",
}


def build_parser() -> argparse.ArgumentParser:
    from egoforge import __version__

    parser = argparse.ArgumentParser(prog="egoforge", description="Egocentric video research on LLaMA-Factory, verl "
                                     "and HF/accelerate: data tools, evaluation, registered extensions.")
    parser.add_argument("--version", action="version", version=f"egoforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"egoforge.tools.{module_name}")
        sub_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_main=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args._main(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
