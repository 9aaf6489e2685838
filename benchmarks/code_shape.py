"""The shape of the product code, for before/after comparisons of a refactor (issue "one house").

Prints the lines of product code per top-level area, the longest functions, how many functions exceed a length, and
which modules decode video (import PyAV) or load a Qwen-VL model. Duplicate pairs come from the separate
``duplicates`` tool; this script only reads the tree.

    python benchmarks/code_shape.py [--longest 15] [--limit 60]
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("plugins", "tools", "rewards")
TEST_HELPERS = ("plugins/testing",)


def product_files() -> list[Path]:
    files = []
    for area in PRODUCT:
        files += sorted((ROOT / area).rglob("*.py"))
    return [f for f in files if not any(str(f.relative_to(ROOT)).startswith(h) for h in TEST_HELPERS)]


def function_lengths(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    rel = path.relative_to(ROOT)
    lengths = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lengths.append((node.end_lineno - node.lineno + 1, f"{rel}:{node.lineno} {node.name}"))
    return lengths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--longest", type=int, default=15)
    parser.add_argument("--limit", type=int, default=60, help="count the functions longer than this")
    args = parser.parse_args()

    files = product_files()
    per_area: dict[str, int] = {}
    lengths: list[tuple[int, str]] = []
    decoders, total = [], 0
    for path in files:
        text = path.read_text()
        n = len(text.splitlines())
        total += n
        parts = path.relative_to(ROOT).parts
        area = "/".join(parts[:2]) if parts[0] == "plugins" and len(parts) > 2 else parts[0]
        per_area[area] = per_area.get(area, 0) + n
        lengths += function_lengths(path)
        if "import av\n" in text or "\n    import av" in text:
            decoders.append(str(path.relative_to(ROOT)))
    print(f"product code: {total} lines in {len(files)} files (plugins/testing excluded)")
    for area, n in sorted(per_area.items(), key=lambda kv: -kv[1]):
        print(f"  {area:28s} {n:6d}")
    lengths.sort(reverse=True)
    print(f"functions over {args.limit} lines: {sum(1 for n, _ in lengths if n > args.limit)}")
    for n, where in lengths[: args.longest]:
        print(f"  {n:4d}  {where}")
    print(f"modules that import PyAV: {len(decoders)}")
    for name in decoders:
        print(f"  {name}")


if __name__ == "__main__":
    main()
