"""``egoforge train RECIPE [key=value ...]``: run one of egoforge's registered trainers on a recipe."""

from __future__ import annotations

import sys

HELP = "train with one of egoforge's own trainers (EgoAgent, EgoM2P, LEGO LDM): recipe YAML + key=value overrides"


def add_arguments(parser) -> None:
    parser.add_argument("recipe", help="recipe YAML with a `trainer:` key (see recipes/)")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. output_dir=runs/x max_steps=10")
    parser.add_argument("--dry-run", action="store_true", help="parse and validate the recipe, print it, do not train")


def main(args) -> int:
    from egoforge import registry
    from egoforge.train.recipe import RecipeError, load_recipe, missing_local_paths

    try:
        recipe = load_recipe(args.recipe, args.overrides)
    except RecipeError as exc:
        print(f"egoforge train: {exc}", file=sys.stderr)
        return 2
    errors = registry.load_all()
    name = recipe.pop("trainer", None)
    if not name:
        print(f"egoforge train: {args.recipe}: missing `trainer:` (one of {registry.TRAINERS.names()})",
              file=sys.stderr)
        return 2
    try:
        trainer = registry.TRAINERS.get(name)
    except KeyError as exc:
        print(f"egoforge train: {args.recipe}: {exc.args[0]}", file=sys.stderr)
        for error in errors:
            print(f"  (could not load {error})", file=sys.stderr)
        return 2
    missing = missing_local_paths(recipe, getattr(trainer, "local_paths", ()))
    if missing:  # one message before any model or data loads; a dry run only reports them
        lines = "\n  ".join(missing)
        print(f"egoforge train: {args.recipe}: missing local path(s), set the key or create the path:\n  {lines}",
              file=sys.stderr)
        if not args.dry_run:
            return 2
    try:
        return int(trainer(recipe, dry_run=args.dry_run) or 0)
    except RecipeError as exc:
        print(f"egoforge train: {args.recipe}: {exc}", file=sys.stderr)
        return 2
