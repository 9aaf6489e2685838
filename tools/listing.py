"""``egoforge list``: every template, mm plugin, reward, trainer and verl extension egoforge registers.

The verl reward managers and trainers listed are the records the verl plugin installs on ``import verl``.
"""

from __future__ import annotations

HELP = ("list egoforge's registered LLaMA-Factory templates and plugins, rewards, trainers and verl reward managers "
        "and trainers")


def add_arguments(parser) -> None:
    parser.add_argument("--check", action="store_true",
                        help="import LLaMA-Factory and confirm the templates are registered there (slower)")


def describe(entry) -> str:
    """An entry's line: its doc, and for a verl extension the setting that selects it."""
    from egoforge.registry import VerlExtension

    if isinstance(entry.obj, VerlExtension):
        return f"{entry.doc} ({entry.obj.setting})"
    return entry.doc


def main(args) -> int:
    from egoforge import registry
    from egoforge.llamafactory.register import TEMPLATE_DOCS, TEMPLATES

    errors = registry.load_all()
    registered = None
    if args.check:
        import llamafactory.data.template as lf_template

        registered = set(lf_template.TEMPLATES)
    print("LLaMA-Factory templates (registered by the start-up hook in every process):")
    for name, (stock, plugin) in TEMPLATES.items():
        mark = "" if registered is None else ("  [registered]" if name in registered else "  [NOT REGISTERED]")
        print(f"  {name:32s} {TEMPLATE_DOCS[name]} (copy of {stock}, mm plugin {plugin}){mark}")
    print("LLaMA-Factory mm plugins:")
    print("  ego_frames_qwen2_vl / ego_frames_qwen3_vl: a sample's <image> frames as one video at video_fps")
    for family in (registry.REWARDS, registry.REWARD_MANAGERS, registry.TRAINERS, registry.VERL_TRAINERS):
        print(f"{family.family}s:")
        for name in family.names() or []:
            print(f"  {name:32s} {describe(family.entries[name])}")
        if not family.names():
            print("  (none installed)")
    for error in errors:
        print(f"warning: could not load {error}")
    if registered is not None and not set(TEMPLATES) <= registered:
        return 1
    return 0
