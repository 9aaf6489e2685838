"""Docs as tests: every shell block in docs/*.md and README.md marked ``<!-- offline -->`` (the line before its
```bash fence) runs, exactly as written, in a fresh folder laid out like a checkout (recipes/, dataset_info/), so a
walkthrough cannot drift from the program."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MARKER = "<!-- offline -->"
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def offline_blocks(pages=PAGES) -> list[tuple[str, int, str]]:
    """(page, line of the fence, block text) of every marked block; a marker not followed by a ```bash fence is an
    error naming the page and line (it would otherwise silently test nothing)."""
    blocks = []
    for page in pages:
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() != MARKER:
                continue
            fence = next((j for j in range(i + 1, len(lines)) if lines[j].strip()), None)
            if fence is None or lines[fence].strip() not in ("```bash", "```sh"):
                raise AssertionError(f"{page.name}:{i + 1}: {MARKER} must be followed by a ```bash block")
            end = next((j for j in range(fence + 1, len(lines)) if lines[j].strip() == "```"), None)
            if end is None:
                raise AssertionError(f"{page.name}:{fence + 1}: unterminated ```bash block")
            blocks.append((page.name, fence + 1, "\n".join(lines[fence + 1:end])))
    return blocks


BLOCKS = offline_blocks()


def egoforge_commands(block: str) -> list[str]:
    """The sub-command of every ``egoforge ...`` invocation in a block (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", block)
    found = []
    for line in text.splitlines():
        for part in re.split(r"[;&|]|\bdo\b", line.split("#")[0]):
            words = part.split()
            if words and words[0] == "egoforge" and len(words) > 1:
                found.append(words[1])
    return found


def test_marked_blocks_exist_and_name_real_commands():
    from egoforge.tools.cli import COMMANDS

    pages = {page for page, _, _ in BLOCKS}
    assert {"egoagent.md", "egom2p.md", "evaluation.md"} <= pages, pages
    for page, line, block in BLOCKS:
        commands = egoforge_commands(block)
        assert commands, f"{page}:{line}: no egoforge command in an offline block"
        unknown = [c for c in commands if c not in COMMANDS]
        assert not unknown, f"{page}:{line}: unknown egoforge sub-command(s) {unknown}"


def test_marker_without_a_bash_block_is_refused(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"{MARKER}\n\nsome prose\n")
    with pytest.raises(AssertionError, match=r"page.md:1: .* must be followed by a ```bash block"):
        offline_blocks([page])
    page.write_text(f"{MARKER}\n```bash\negoforge demo\n```\n")
    assert offline_blocks([page]) == [("page.md", 2, "egoforge demo")]


def test_every_page_opens_with_its_demo():
    for page, pipeline in (("ego3s.md", "ego3s"), ("lego.md", "lego"), ("evaluation.md", "suite"),
                           ("egoagent.md", "egoagent"), ("egom2p.md", "egom2p"), ("egocross.md", "egocross")):
        head = "\n".join((REPO / "docs" / page).read_text().splitlines()[:8])
        assert f"egoforge demo {pipeline}" in head, page
    readme = (REPO / "README.md").read_text()
    for pipeline in ("egocross", "ego3s", "lego", "suite", "egoagent", "egom2p"):
        assert f"egoforge demo {pipeline}" in readme, pipeline


@pytest.mark.slow
@pytest.mark.demo
@pytest.mark.parametrize("page,line,block", BLOCKS, ids=[f"{p}:{n}" for p, n, _ in BLOCKS])
def test_offline_block_runs_as_written(page, line, block, tmp_path):
    for name in ("recipes", "dataset_info"):
        (tmp_path / name).symlink_to(REPO / name)
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(tmp_path / ".cache" / "datasets")}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=1200)
    assert result.returncode == 0, (f"{page}:{line} failed (exit {result.returncode}):\n{shlex.quote(block)}\n"
                                    + result.stdout[-3000:] + result.stderr[-3000:])
