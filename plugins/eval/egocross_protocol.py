"""The EgoCross CloseQA protocol: the official JSON-answer prompt and the response parser.

Pure functions; the prompt text follows the official ``eval_os_closedset.py`` verbatim, including its missing
newline between the options and the FPS sentence.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_JSON_BLOCK = re.compile(r"\{[\s\S]*?\}")
_THINK_BLOCK = re.compile(r"<think>[\s\S]*?</think>", re.IGNORECASE)
# A bare option letter, as the EgoCross SFT repository's own inference reads it ("B", "(B)", "B.", "Answer: B").
_BARE_LETTER = re.compile(r"^\s*(?:answer\s*[:：]?\s*)?[(\[]?([A-Da-d])[)\].:]?\s*$", re.IGNORECASE)


def build_closeqa_prompt(question: str, options: list[str], original_fps: float, sampling_fps: float) -> str:
    """Return the CloseQA user prompt for one testbed item."""
    options_str = "\n\nOptions:\n" + "\n".join(options) if options else ""
    return (
        "Please carefully read the question and its options, then select the most appropriate answer. "
        f"Question: {question}{options_str}"
        f"The original FPS of the video is {original_fps}. "
        f"This image set is obtained by sampling at {sampling_fps} fps."
        "Respond in JSON format with two fields: 'prediction' (the correct option letter: A, B, C, or D) and 'reason' "
        "(a brief explanation of your choice). "
        "Do not include any other content.\n\n"
        "Example response:\n"
        "{\n"
        '    "prediction": "B",\n'
        '    "reason": "Paris is the capital city of France."\n'
        "}\n"
    )


@dataclass(frozen=True)
class ParsedResponse:
    prediction: str
    reason: str
    status: str  # "json", "json_block", "letter" or "unparsed"


def _from_json(obj: object) -> tuple[str, str] | None:
    if not isinstance(obj, dict):
        return None
    prediction = obj.get("prediction", "")
    reason = obj.get("reason", "")
    return (prediction if isinstance(prediction, str) else str(prediction), reason if isinstance(reason, str) else "")


def _loads(text: str) -> object | None:
    """``json.loads`` or None: the official script scores any parse failure (deep nesting included) as wrong."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def parse_response(response: str, allow_bare_letter: bool = True, drop_think: bool | None = None) -> ParsedResponse:
    """Parse a model response the official way, then (optionally) accept a bare option letter.

    1. ``json.loads(response)['prediction']``; 2. the first ``{...}`` block parsed as JSON (official fallback);
    3. with ``allow_bare_letter``, a response that is only a letter such as ``B`` or ``(B)``, which is how the
    EgoCross SFT repository's own vLLM inference answers. With ``drop_think`` a ``<think>..</think>`` block is
    dropped (and the rest stripped) first: the ``qwen3_vl`` template trains the answer behind an empty one, and a
    brace inside the reasoning would otherwise be taken as the answer block. ``drop_think`` follows
    ``allow_bare_letter`` when unset, so ``allow_bare_letter=False`` scores exactly like the benchmark's
    ``eval_os_closedset.py``.
    """
    if drop_think is None:
        drop_think = allow_bare_letter
    text = _THINK_BLOCK.sub("", response).strip() if drop_think else response
    parsed = _from_json(_loads(text))
    if parsed is not None:
        return ParsedResponse(*parsed, status="json")
    match = _JSON_BLOCK.search(text)
    if match:
        parsed = _from_json(_loads(match.group(0)))
        if parsed is not None:
            return ParsedResponse(*parsed, status="json_block")
    if allow_bare_letter:
        letter = _BARE_LETTER.match(text)
        if letter:
            return ParsedResponse(letter.group(1).upper(), "", status="letter")
    return ParsedResponse("", "", status="unparsed")


def is_correct(prediction: str, correct_letter: str) -> bool:
    """Case-insensitive exact match, as in the official script (no trimming: ``" B"`` is wrong there too)."""
    return bool(prediction) and prediction.lower() == correct_letter.lower()
