"""The EgoCross CloseQA protocols: the official JSON-answer prompt, the SFT repository's letter prompt, the parser.

Pure functions. ``official`` follows the benchmark's ``eval_os_closedset.py`` verbatim, including its missing
newline between the options and the FPS sentence. ``sft`` follows the EgoCross SFT repository
(LiYu0524/EgoCross_SFT_qwen3vl4b): its support-set user turn and its vLLM inference example (every frame as an
image before the text, ``question\nA) ...\nB) ...``, a one-letter answer, temperature 0, 16 new tokens).
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


def build_openqa_prompt(question: str, original_fps: float, sampling_fps: float) -> str:
    """The official OpenQA user prompt (``eval_gpt_openset.py``): no options, a free-text JSON ``prediction``."""
    return (
        "Please carefully read the question and the provided context, then provide a clear and concise answer "
        "based on your understanding. "
        f"Question: {question}\n"
        f"The original FPS of the video is {original_fps}. "
        f"This image set is obtained by sampling at {sampling_fps} fps."
        "Your answer should be reasoned and directly address the question. "
        "Respond in JSON format with two fields: 'prediction' (your answer as text) and 'reason' "
        "(a brief explanation of your reasoning). "
        "Do not include any other content.\n\n"
        "Example response:\n"
        "{\n"
        '    "prediction": "The time duration of the video is 10 seconds.",\n'
        '    "reason": "The total number of frames is 240 and the frame rate is 24 FPS, so 240 / 24 = 10 seconds."\n'
        "}\n"
    )


_OPTION = re.compile(r"^\s*([A-Z])\s*[:：.)]\s?(.*)$", re.DOTALL)


def split_option(option: str) -> tuple[str, str]:
    """``("A", "4")`` for the testbed's ``"A: 4"``; a ValueError naming the option otherwise."""
    match = _OPTION.match(option) if isinstance(option, str) else None
    if not match:
        raise ValueError(f"option {option!r} is not of the form 'A: text'")
    return match.group(1), match.group(2)


def build_sft_prompt(question: str, options: list[str]) -> str:
    """The SFT repository's user text: the question, then one ``A) text`` line per option (no FPS, no JSON)."""
    lines = [f"{letter}) {text}" for letter, text in map(split_option, options)]
    return "\n".join([question, *lines])


@dataclass(frozen=True)
class Protocol:
    """How the model sees one question: frames as one video or as images, generation length, pixel budget."""

    name: str
    frames_as: str
    max_new_tokens: int
    max_pixels: int
    min_pixels: int
    summary: str


PROTOCOLS = {
    "official": Protocol(
        "official", "video", 2048, 480 * 360, 32 * 32,
        "official CloseQA (eval_os_closedset.py): frames as one video at 0.5 fps, JSON answer, greedy, 2048 tokens"),
    # The pixel budget is the SFT recipes' image_max_pixels / image_min_pixels (the README's inference example
    # leaves it to the served checkpoint): an inference, marked so in docs/egocross.md.
    "sft": Protocol(
        "sft", "images", 16, 360000, 50176,
        "EgoCross SFT repository: frames as images, 'question + A) ..' prompt, one-letter answer, greedy, 16 tokens"),
    # OpenQA: the official open prompt; frames fed like the official open-source-model CloseQA script.
    "openqa": Protocol(
        "openqa", "video", 2048, 480 * 360, 32 * 32,
        "official OpenQA (eval_gpt_openset.py): open prompt, JSON answer, LLM judge mark >= 4 of 5 counts"),
}
CLOSEQA_PROTOCOLS = ("official", "sft")


def build_prompt(protocol: str, item: dict, prompt_fps: float) -> str:
    """The user text of one testbed item under ``protocol`` ("official" or "sft")."""
    if protocol == "sft":
        return build_sft_prompt(item["question_text"], item["options"])
    if protocol == "official":
        return build_closeqa_prompt(item["question_text"], item["options"], item.get("original_video_fps", ""),
                                    prompt_fps)
    if protocol == "openqa":
        return build_openqa_prompt(item["question_text"], item.get("original_video_fps", ""), prompt_fps)
    raise ValueError(f"unknown EgoCross protocol {protocol!r}: choose {', '.join(PROTOCOLS)}")


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
