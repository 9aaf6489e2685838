"""The Ego3S prompt: the question (with options), how to reason, and the answer format for its problem type.

The wording is egoforge's; the structure follows the Video-R1 / Ego3S code: a reasoning instruction naming the
``<think>`` and ``<answer>`` tags (plus ``<object>`` for IRL), and one sentence per problem type saying what goes
inside ``<answer>``.
"""

from __future__ import annotations

REASONING = (
    "Reason about it the way the person wearing the camera would, step by step; question your first impression "
    "and check it against what the frames show. Write the reasoning between <think> and </think>, then the final "
    "answer between <answer> and </answer>."
)
OBJECTS = (" Finally, list the key objects your reasoning relied on between <object> and </object>, separated by "
           "commas.")
ANSWER_FORMAT = {
    "multiple choice": " Inside <answer> </answer> give only the letter of the chosen option (A, B, C, ...).",
    "numerical": " Inside <answer> </answer> give only the number (for example 3 or 2.5).",
    "OCR": " Inside <answer> </answer> give the text exactly as it is written in the video or image.",
    "free-form": " Inside <answer> </answer> give a short answer in words.",
    "regression": " Inside <answer> </answer> give only the number (for example 3 or 2.5).",
}


def question_text(problem: str, problem_type: str, options: list[str] | None = None) -> str:
    """The question with its option lines (multiple choice only, as in the reference code)."""
    if problem_type == "multiple choice" and options:
        return problem.rstrip() + "\nOptions:\n" + "\n".join(options)
    return problem


def build_prompt(problem: str, problem_type: str, options: list[str] | None = None, irl: bool = True) -> str:
    """The full user text (no media placeholder)."""
    return (question_text(problem, problem_type, options) + "\n" + REASONING + (OBJECTS if irl else "")
            + ANSWER_FORMAT.get(problem_type, ""))
