"""Parsing model responses: tagged sections, the response format, and the listed interaction objects.

Everything is linear-time string scanning. The reference code uses ``re.fullmatch`` with lazy groups, which
backtracks quadratically on responses that repeat the tags thousands of times; ``format_matches`` accepts
exactly the strings that pattern accepts, without the backtracking.
"""

from __future__ import annotations

import re
from functools import lru_cache

R1_TAGS = ("think", "answer")  # Video-R1 / CSM: <think>..</think><answer>..</answer>
IRL_TAGS = ("think", "answer", "object")  # Ego3S IRL adds <object>obj_1,obj_2</object>


def extract_tag(text: str, tag: str) -> str:
    """Content of the first ``<tag>...</tag>`` section, stripped; "" when there is none.

    Same result as ``re.search(r"<tag>\\s*(.*?)\\s*</tag>", text, re.DOTALL)`` in the reference code.

    >>> extract_tag("<think>hm</think><answer> B </answer>", "answer")
    'B'
    """
    opening, closing = f"<{tag}>", f"</{tag}>"
    start = text.find(opening)
    if start < 0:
        return ""
    start += len(opening)
    end = text.find(closing, start)
    return text[start:end].strip() if end >= 0 else ""


@lru_cache(maxsize=8)
def _junction(left: str, right: str) -> re.Pattern:
    return re.compile(rf"</{left}>\s*<{right}>")


def format_matches(text: str, tags: tuple[str, ...] = R1_TAGS) -> bool:
    """True iff ``text`` is ``<t1>..</t1> <t2>..</t2> ...`` with only whitespace between sections.

    Equivalent to ``re.fullmatch(r"<t1>.*?</t1>\\s*<t2>.*?</t2>...", text, re.DOTALL)``: take the leftmost
    junction ``</t_k>\\s*<t_k+1>`` after the previous one each time; the leftmost choice leaves the most room for
    the rest, so if any split exists this one does.

    >>> format_matches("<think>a</think>\\n<answer>B</answer>")
    True
    >>> format_matches("<think>a</think><answer>B</answer> trailing")
    False
    """
    opening, closing = f"<{tags[0]}>", f"</{tags[-1]}>"
    if not (text.startswith(opening) and text.endswith(closing)):
        return False
    position, limit = len(opening), len(text) - len(closing)
    for left, right in zip(tags, tags[1:]):
        match = _junction(left, right).search(text, position)
        if match is None or match.end() > limit:
            return False
        position = match.end()
    return position <= limit


def parse_objects(text: str, limit: int | None = None) -> list[str]:
    """The comma-separated objects of the first ``<object>`` section (empty entries dropped).

    ``limit`` keeps only the first objects (the CLIP term's work is capped; the count for the over-listing
    penalty uses ``count_objects``, which never materialises the list).

    >>> parse_objects("<object> cup, knife ,, cutting board</object>")
    ['cup', 'knife', 'cutting board']
    """
    content = extract_tag(text, "object")
    objects: list[str] = []
    for piece in content.split(","):
        piece = piece.strip()
        if piece:
            objects.append(piece)
            if limit is not None and len(objects) >= limit:
                break
    return objects


def count_objects(text: str) -> int:
    """Number of non-empty comma-separated entries in the first ``<object>`` section."""
    content = extract_tag(text, "object")
    return sum(1 for piece in content.split(",") if piece.strip())


_OPTION_LETTER = re.compile(r"^\(?([A-Za-z])\)?\s*(?:[.:)\]]|$)")


def option_letter(answer: str) -> str:
    """The option letter of a multiple-choice answer: "B", "(B)", "B.", "B. a red cup", "b" -> "B".

    Anything else (e.g. "B or C", "the red one") is returned stripped and unchanged, so it never equals a letter.
    """
    answer = answer.strip()
    match = _OPTION_LETTER.match(answer)
    return match.group(1).upper() if match else answer
