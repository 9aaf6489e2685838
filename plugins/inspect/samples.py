"""What the report shows of one dataset row, whatever its format, and the pure text helpers that fill it in."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from egoforge.data.egocross import DATASET_TO_DOMAIN, DOMAINS
from egoforge.data.validate import Issue

# "A) red", "(B) red", "C. red", "D: red", "A：red" (full-width colon, as some Chinese-made sets write it).
_OPTION = re.compile(r"^\s*\(?([A-Z])\s*[\)\.:：]\s*(.+?)\s*$")
_LETTER = re.compile(r"^\s*\(?([A-Z])\)?\.?\s*$")
_TAGS = re.compile(r"<(?:image|video|audio)>")
_OPTIONS_HEADER = re.compile(r"^\s*options\s*[:：]?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class MediaRef:
    """One visual input of a sample as the data file spells it; ``kind`` is "image", "bytes" or "video".

    An image (a path or encoded bytes) carries its timestamp in the clip; a video file is sampled later, when its
    duration is known.
    """

    kind: str
    field: str  # where the data file holds it, e.g. "images[3]" or "videos[0][2]"
    path: str | None = None
    data: bytes | None = None
    time: float | None = None


@dataclass
class Sample:
    """One row of a dataset, ready to render."""

    row: int
    id: str
    domain: str = ""
    category: str = ""
    question_type: str = ""
    question: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    answer: str = ""  # the ground truth as written (an option letter, or free text)
    media: list[MediaRef] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    raw: str = ""  # the row's JSON when it could not be read as a sample at all
    prediction: dict | None = None
    verdict: str = "none"  # "correct", "wrong", "none" (no prediction) or "unscored" (no ground truth)
    why: str = ""

    def option_text(self, letter: str) -> str:
        return next((text for lt, text in self.options if lt.lower() == letter.lower()), "")


def split_options(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Separate a prompt into the question and its ``A) ..`` option lines (an "Options:" header is dropped)."""
    question_lines, options = [], []
    for line in re.split(r"\r?\n", text):  # not splitlines(): it also breaks at U+2028 and friends
        match = _OPTION.match(line)
        if match and _is_next_letter(options, match.group(1)):
            options.append((match.group(1), match.group(2)))
        elif not _OPTIONS_HEADER.match(line):
            question_lines.append(line)
    return "\n".join(question_lines).strip(), options


def _is_next_letter(options: list[tuple[str, str]], letter: str) -> bool:
    """Options run A, B, C, ...: a sentence that merely starts with "I." is not taken for option I."""
    expected = chr(ord(options[-1][0]) + 1) if options else "A"
    return letter == expected


def parse_option(option: str) -> tuple[str, str] | None:
    """``"A: red"`` -> ``("A", "red")``; None when the string does not start with an option letter."""
    match = _OPTION.match(option)
    return (match.group(1), match.group(2)) if match else None


def answer_letter(answer: str) -> str | None:
    """The option letter an answer consists of (``"B"``, ``"(B)"``, ``"B."``), else None."""
    match = _LETTER.match(answer)
    return match.group(1) if match else None


def strip_media_tags(text: str) -> str:
    return _TAGS.sub("", text).strip()


def domain_from_paths(paths: list[str]) -> str:
    """An EgoCross domain named by a folder of the media paths (``frames/Surgery/..``, ``testbed/EgoPet/..``)."""
    for path in paths:
        for part in re.split(r"[\\/]", path):
            if part in DOMAINS:
                return part
            if part in DATASET_TO_DOMAIN:
                return DATASET_TO_DOMAIN[part]
    return ""


def judge(sample: Sample) -> None:
    """Set ``verdict`` and ``why`` from the sample's prediction record and ground truth.

    A letter answer is compared the official EgoCross way (``is_correct``: case-insensitive exact match); a
    free-text answer is compared case-insensitively after trimming.
    """
    from egoforge.eval.egocross_protocol import is_correct

    record = sample.prediction
    if record is None:
        sample.verdict, sample.why = "none", "no prediction for this id"
        return
    predicted = str(record.get("prediction") or "")
    if not sample.answer:
        sample.verdict, sample.why = "unscored", "no ground truth for this sample"
        return
    letter = answer_letter(sample.answer)
    if letter is not None:
        hit = is_correct(predicted, letter)
    else:
        hit = bool(predicted) and predicted.strip().lower() == sample.answer.strip().lower()
    sample.verdict = "correct" if hit else "wrong"
    if hit:
        sample.why = ""
    elif not predicted:
        status = record.get("parse_status", "")
        sample.why = ("the response could not be parsed into an option letter" if status == "unparsed"
                      else "the prediction is empty")
    else:
        truth = letter or sample.answer
        said, meant = sample.option_text(predicted), sample.option_text(truth)
        sample.why = (f"predicted {predicted}" + (f" ({said})" if said else "")
                      + f" but the answer is {truth}" + (f" ({meant})" if meant else ""))
