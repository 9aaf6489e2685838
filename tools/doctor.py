"""``egoforge doctor [RECIPE ...]``: check before a launch that this environment can run what you are about to run."""

from __future__ import annotations

HELP = ("check the environment before a launch: lock drift, the LLaMA-Factory hook, the verl plugin, the lmms-eval "
        "model, and each RECIPE's environment and local inputs")


def add_arguments(parser) -> None:
    parser.add_argument("recipes", nargs="*", metavar="RECIPE", help="recipe files whose inputs must exist")
    parser.add_argument("--strict", action="store_true", help="treat warnings (optional checks) as failures too")


def main(args) -> int:
    from pathlib import Path

    from egoforge.doctor import run_checks

    checks = run_checks([Path(recipe) for recipe in args.recipes])
    failed = 0
    for check in checks:
        if check.ok:
            mark = "ok  "
        elif check.required or args.strict:
            mark, failed = "FAIL", failed + 1
        else:
            mark = "warn"
        print(f"[{mark}] {check.name}: {check.detail}")
        if not check.ok and check.fix:
            print(f"       fix: {check.fix}")
    print(f"egoforge doctor: {failed} problem(s)" if failed else "egoforge doctor: ready")
    return 1 if failed else 0
