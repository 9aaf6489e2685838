"""The LEGO data files, read and checked; every problem names the file, the row and the field.

* ``{ego4d,epickitchen}_{train,val}.json``: ``{clip_id: {action_id: {image_0, image_1, action,
  llava_forecast_finetune, ...}}}``. ``image_0`` is the source frame and ``image_1`` the target action frame, both
  relative to the split's frame folder (``EgoGen/ego4d.fho/train``); ``llava_forecast_finetune`` is the VLLM's
  enriched description. "Row" is the action's position in file order; the field names its clip and action.
* ``curation_from_gpt/*_for_tuning_forecasting.json``: the GPT-curated descriptions in LLaVA's conversation format,
  ``[{"id", "image", "conversations": [{"from": "human", "value": "<image>\\n..."}, {"from": "gpt", ...}]}]``,
  images relative to the same frame folder.

Nothing here writes: the source files are only read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from egoforge.data.jsonio import DataFormatError, read_json
from egoforge.data.validate import Issue, MediaCheck

LEGO_REQUIRED = ("image_0", "image_1", "action")
DESCRIPTION_KEY = "llava_forecast_finetune"


@dataclass(frozen=True)
class LegoAction:
    """One (source frame, action, target frame) triple of a LEGO json."""

    clip_id: str
    action_id: str
    image_0: str
    image_1: str
    action: str
    row: int
    fields: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def key(self) -> str:
        return f"{self.clip_id}/{self.action_id}"

    def text(self, key: str) -> str | None:
        value = self.fields.get(key)
        return value if isinstance(value, str) else None


def _where(clip_id: str, action_id: str, name: str | None = None) -> str:
    return f"[{clip_id}][{action_id}]" + (f".{name}" if name else "")


def iter_lego_actions(path: str | os.PathLike) -> Iterator[LegoAction | Issue]:
    """Every action of a LEGO json in file order, or an Issue for each malformed one (never raises on rows)."""
    data = read_json(path)
    file = str(path)
    if not isinstance(data, dict):
        raise DataFormatError(path, None, None,
                              f"expected {{clip_id: {{action_id: {{...}}}}}}, got a JSON {type(data).__name__}")
    row = 0
    for clip_id, actions in data.items():
        if not isinstance(actions, dict):
            yield Issue(file, row, f"[{clip_id}]", "a clip maps action ids to objects")
            row += 1
            continue
        for action_id, entry in actions.items():
            if not isinstance(entry, dict):
                yield Issue(file, row, _where(clip_id, action_id), "an action is a JSON object")
            else:
                missing = [name for name in LEGO_REQUIRED if not isinstance(entry.get(name), str) or not entry[name]]
                for name in missing:
                    yield Issue(file, row, _where(clip_id, action_id, name), "missing or not a non-empty string")
                if not missing:
                    yield LegoAction(str(clip_id), str(action_id), entry["image_0"], entry["image_1"],
                                     entry["action"], row, dict(entry))
            row += 1


def load_lego_json(path: str | os.PathLike) -> list[LegoAction]:
    """All actions of a LEGO json; raises DataFormatError at the first malformed row."""
    actions = []
    for item in iter_lego_actions(path):
        if isinstance(item, Issue):
            raise DataFormatError(item.file, item.row, item.field, item.message)
        actions.append(item)
    return actions


@dataclass(frozen=True)
class CurationSample:
    """One GPT-curated conversation (LLaVA format): an image and alternating human/gpt turns."""

    id: str
    image: str
    turns: tuple[tuple[str, str], ...]  # (role "user"/"assistant", text)
    row: int


_LLAVA_ROLES = {"human": "user", "gpt": "assistant", "user": "user", "assistant": "assistant"}


def iter_curation(path: str | os.PathLike) -> Iterator[CurationSample | Issue]:
    data = read_json(path)
    file = str(path)
    if not isinstance(data, list):
        raise DataFormatError(path, None, None, f"expected a JSON list of conversations, got {type(data).__name__}")
    for row, item in enumerate(data):
        if not isinstance(item, dict):
            yield Issue(file, row, None, "a conversation is a JSON object")
            continue
        image = item.get("image")
        if not isinstance(image, str) or not image:
            yield Issue(file, row, "image", "missing or not a path string")
            continue
        turns = item.get("conversations")
        if not isinstance(turns, list) or not turns:
            yield Issue(file, row, "conversations", "missing or empty")
            continue
        parsed, bad = [], False
        for i, turn in enumerate(turns):
            role = _LLAVA_ROLES.get(turn.get("from")) if isinstance(turn, dict) else None
            if role is None or not isinstance(turn.get("value"), str):
                yield Issue(file, row, f"conversations[{i}]", "expected {'from': 'human'|'gpt', 'value': str}")
                bad = True
                break
            if role != ("user" if i % 2 == 0 else "assistant"):
                yield Issue(file, row, f"conversations[{i}].from", "turns must alternate human, gpt, human, ...")
                bad = True
                break
            parsed.append((role, turn["value"]))
        if bad:
            continue
        if len(parsed) % 2:
            yield Issue(file, row, "conversations", "the last turn must be the gpt answer")
            continue
        text = "".join(value for _, value in parsed)
        if text.count("<image>") != 1:
            yield Issue(file, row, "conversations", f"expected one <image> tag, found {text.count('<image>')}")
            continue
        yield CurationSample(str(item.get("id", row)), image, tuple(parsed), row)


def load_curation(path: str | os.PathLike) -> list[CurationSample]:
    samples = []
    for item in iter_curation(path):
        if isinstance(item, Issue):
            raise DataFormatError(item.file, item.row, item.field, item.message)
        samples.append(item)
    return samples


def detect_kind(path: str | os.PathLike) -> str:
    """"lego" for the nested clip/action json, "curation" for a LLaVA conversation list."""
    data = read_json(path)
    if isinstance(data, dict):
        return "lego"
    if isinstance(data, list):
        return "curation"
    raise DataFormatError(path, None, None, "neither a LEGO json (object) nor a GPT-curation file (list)")


def validate_lego_file(path: str | os.PathLike, frames_dir: str | os.PathLike | None = None,
                       decode: bool = True, prompt_key: str | None = DESCRIPTION_KEY) -> list[Issue]:
    """All problems of a LEGO json or GPT-curation file, frames checked under ``frames_dir`` (never writes).

    ``prompt_key``: the field ``lego convert`` takes the text prompt from; a LEGO row without it is an error, as
    the converter refuses it (None: not checked, as ``convert --fallback-to-action`` uses the action label)."""
    try:
        kind = detect_kind(path)
        media = MediaCheck(Path(frames_dir) if frames_dir else Path(path).parent, decode=decode)
        issues: list[Issue] = []
        if kind == "lego":
            seen: dict[str, int] = {}
            for item in iter_lego_actions(path):
                if isinstance(item, Issue):
                    issues.append(item)
                    continue
                if prompt_key and prompt_key != "action" and item.text(prompt_key) is None:
                    issues.append(Issue(str(path), item.row, _where(item.clip_id, item.action_id, prompt_key),
                                        "missing: `lego convert` takes the prompt from it (--prompt-key action or "
                                        "--fallback-to-action use the action label)"))
                for name in ("image_0", "image_1"):
                    problem = media.problem(getattr(item, name))
                    if problem:
                        issues.append(Issue(str(path), item.row, _where(item.clip_id, item.action_id, name), problem))
                if item.image_0 == item.image_1:
                    issues.append(Issue(str(path), item.row, _where(item.clip_id, item.action_id, "image_1"),
                                        "the target frame is the source frame", "warning"))
                if item.image_0 in seen:
                    issues.append(Issue(str(path), item.row, _where(item.clip_id, item.action_id, "image_0"),
                                        f"source frame also used by row {seen[item.image_0]}: its VLLM features "
                                        "are keyed by this path and would collide", "warning"))
                seen.setdefault(item.image_0, item.row)
        else:
            for item in iter_curation(path):
                if isinstance(item, Issue):
                    issues.append(item)
                    continue
                problem = media.problem(item.image)
                if problem:
                    issues.append(Issue(str(path), item.row, "image", problem))
        return issues
    except DataFormatError as exc:
        return [Issue(exc.path, exc.row, exc.field, exc.reason)]
