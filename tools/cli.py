"""The ``egoforge`` command: one entry point, one module per sub-command (imported lazily)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

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

# Global switches, accepted anywhere on the command line (also after the sub-command, whose own parser never sees
# them): evaluate passes its arguments on to a second parser, and users add --debug at the end of a failed command.
GLOBAL_FLAGS = ("--debug", "--online")


def build_parser() -> argparse.ArgumentParser:
    from egoforge import __version__

    parser = argparse.ArgumentParser(prog="egoforge", description="Egocentric video research on LLaMA-Factory, verl "
                                     "and HF/accelerate: data tools, evaluation, registered extensions.",
                                     epilog="Bad input is reported in one line (file, row, field, fix) with exit code "
                                     "2; models are local folders (the hub is offline unless --online).")
    parser.add_argument("--version", action="version", version=f"egoforge {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error (also EGOFORGE_DEBUG=1)")
    parser.add_argument("--online", action="store_true", help="allow the Hugging Face hub: hub ids as --model, "
                        "downloads (also EGOFORGE_ONLINE=1); default offline")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"egoforge.tools.{module_name}")
        sub_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_main=module.main)
    return parser


def split_global_flags(argv: list[str]) -> tuple[list[str], set[str]]:
    """``argv`` without the global switches (before any ``--``), and the switches found."""
    kept, found = [], set()
    for i, token in enumerate(argv):
        if token == "--":
            kept.extend(argv[i:])
            break
        if token in GLOBAL_FLAGS:
            found.add(token)
        else:
            kept.append(token)
    return kept, found


# options that must not exceed their partner, in whichever sub-command has both (ego3s convert, select csm ...)
ORDERED_OPTIONS = (("min_frames", "max_frames"), ("min_pixels", "max_pixels"))


def _checked_main(command_main):
    """The sub-command's main, after the cross-argument checks the parser cannot do on one option."""
    from egoforge.tools.argtypes import check_order_or_raise

    def run(args):
        check_order_or_raise(args, *ORDERED_OPTIONS)
        return command_main(args)

    return run


# argument names (dest) that name an output; every other string argument may be an input
OUTPUT_DESTS = ("out", "json_out", "local_dir")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.isfile(b) and os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def output_overwriting_input(args: argparse.Namespace) -> str | None:
    """A message when an output argument names an input file of the same command (``validate d.json --json
    d.json`` would replace the dataset it promises never to modify), else None."""
    outputs, inputs = [], []
    for dest, value in vars(args).items():
        values = value if isinstance(value, list) else [value]
        values = [v for v in values if isinstance(v, str)]
        if dest == "rest":  # evaluate's second parser: `--out X` inside the remaining arguments
            after_out = {i + 1 for i, v in enumerate(values) if v == "--out"}
            outputs.extend(("--out", v) for i, v in enumerate(values) if i in after_out)
            inputs.extend(v for i, v in enumerate(values) if i not in after_out and not v.startswith("--"))
        elif dest in OUTPUT_DESTS:
            outputs.extend(("--" + dest.replace("_out", "").replace("_", "-"), v) for v in values)
        else:
            inputs.extend(values)
    for flag, out in outputs:
        for candidate in inputs:
            if _same_file(out, candidate):
                return (f"{flag} {out} is also an input of this command ({candidate}); refusing to overwrite "
                        "it: choose another output path")
    return None


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def run_guarded(command_main, args, prog: str, debug: bool) -> int:
    """Run a sub-command: input errors become one line and exit 2, other exceptions one line and exit 1."""
    from egoforge.data.errors import describe

    try:
        return int(command_main(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `egoforge ... | head`: the reader went away, nothing to report
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps Python's exit-time flush quiet
        except OSError:
            pass
        return 141
    except Exception as exc:  # noqa: BLE001 - the one place every command's errors are reported
        report = describe(exc)
        if debug:
            traceback.print_exc(file=sys.stderr)
        print(f"{prog}: {report.message}", file=sys.stderr)
        return report.exit_code


def _prog(args: argparse.Namespace) -> str:
    """``egoforge lego metrics``: the command and its step, to prefix messages with."""
    step = next((v for k, v in vars(args).items() if k.endswith(("_command", "_method")) and isinstance(v, str)), None)
    return f"egoforge {args.command}" + (f" {step}" if step else "")


def main(argv: list[str] | None = None) -> int:
    argv, flags = split_global_flags(list(sys.argv[1:] if argv is None else argv))
    debug = "--debug" in flags or _truthy("EGOFORGE_DEBUG")
    from egoforge.data.models import hub_mode, wants_online

    # `download` exists to reach the hubs; every other command is offline unless asked (models are local folders).
    online = "--online" in flags or wants_online() or (argv[:1] == ["download"])
    with hub_mode(online):
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        clash = output_overwriting_input(args)
        if clash:
            print(f"{_prog(args)}: {clash}", file=sys.stderr)
            return 2
        return run_guarded(_checked_main(args._main), args, _prog(args), debug)


if __name__ == "__main__":
    sys.exit(main())
