"""LEGO files: the query and action normalisation, validation with file/row/field, and the two conversions."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from egoforge.data.jsonio import DataFormatError
from egoforge.lego.actions import QUERY, base_verb, normalize_action, query_for
from egoforge.lego.convert import convert_file, read_index
from egoforge.lego.formats import load_curation, load_lego_json, validate_lego_file
from egoforge.testing.lego_data import make_lego_dataset


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return make_lego_dataset(tmp_path_factory.mktemp("lego_fmt"), "ego4d", clips={"train": 2, "val": 1})


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# What NLTK's WordNet lemmatiser (the official code's, pos "v") returns for these verbs.
WORDNET_VERB_LEMMAS = {
    "picks": "pick", "squeezes": "squeeze", "freezes": "freeze", "focuses": "focus", "uses": "use",
    "carries": "carry", "washes": "wash", "goes": "go", "ties": "tie", "dries": "dry", "touches": "touch",
    "closes": "close", "puts": "put", "cuts": "cut", "is": "be", "has": "have", "does": "do", "mixes": "mix",
    "stirs": "stir", "rinses": "rinse", "opens": "open", "presses": "press", "pushes": "push", "sizes": "size",
    "releases": "release", "moves": "move", "applies": "apply", "plays": "play", "echoes": "echo",
    "picked": "pick", "took": "take", "holding": "hold", "unties": "untie", "caches": "cache",
}


def official_action(narration: str) -> str:
    """The official run_llava_in_loop.py on an Ego4D narration: drop two characters ("#C") and two more ("C "),
    lemmatise the first word as a verb (WordNet, here its answers above)."""
    action = narration[2:].strip()[2:].strip()
    verb, _, rest = action.partition(" ")
    verb = WORDNET_VERB_LEMMAS.get(verb.lower(), verb.lower())
    return f"{verb} {rest}" if rest else verb


@pytest.mark.parametrize("verb", sorted(WORDNET_VERB_LEMMAS))
def test_canonical_narrations_match_the_official_lemmatised_query(verb):
    narration = f"#C C {verb} the red cup"
    assert normalize_action(narration, "ego4d") == official_action(narration)
    assert base_verb(verb) == WORDNET_VERB_LEMMAS[verb]


def test_query_uses_the_ego4d_narration_in_base_form():
    assert QUERY == "How does the person properly {action} that is displayed in the video frame?"
    assert normalize_action("#C C picks up the red cup", "ego4d") == "pick up the red cup"
    assert normalize_action("C carries the box", "ego4d") == "carry the box"
    assert normalize_action("open  fridge", "epickitchen") == "open fridge"
    assert query_for("#C C pulls the drawer", "ego4d") == \
        "How does the person properly pull the drawer that is displayed in the video frame?"
    with pytest.raises(ValueError, match="unknown LEGO dataset"):
        normalize_action("x", "kinetics")


@pytest.mark.parametrize("narration, action", [
    ("#c c cuts the onion", "cut the onion"),  # lower case, as many real Ego4D narrations
    ("#C c squeezes the lemon", "squeeze the lemon"),
    ("#CC freezes the meat", "freeze the meat"),
    ("  #C   C   washes  a  plate ", "wash a plate"),
    ("#C C focuses on the screen.", "focus on the screen"),
    ("#C C picks up #unsure from the table", "pick up from the table"),
    ("#O man X picks up a knife", "pick up a knife"),  # another person's action
    ("#o A woman cuts the onion", "cut the onion"),
    ("#O The lady Y puts the cup down", "put the cup down"),
    ("#O X opens the fridge", "open the fridge"),
    ("#C C cut the onion", "cut the onion"),  # already a base form
])
def test_real_ego4d_narration_variants(narration, action):
    assert normalize_action(narration, "ego4d") == action


def test_a_narration_without_an_action_is_named():
    with pytest.raises(ValueError, match=r"narration '#C C #unsure' holds no action"):
        normalize_action("#C C #unsure", "ego4d")


def test_generated_files_have_the_lego_layout_and_validate_clean(layout):
    data = json.loads(layout.json("train").read_text())
    clip = next(iter(data.values()))
    entry = next(iter(clip.values()))
    assert set(entry) >= {"image_0", "image_1", "action", "llava_forecast_finetune"}
    assert entry["action"].startswith("#C C ")
    assert validate_lego_file(layout.json("train"), layout.frames_dir("train")) == []
    assert validate_lego_file(layout.curation, layout.frames_dir("train")) == []
    assert len(load_lego_json(layout.json("train"))) == 4
    curation = load_curation(layout.curation)
    assert curation[0].turns[0][1].startswith("<image>\nHow does the person properly ")
    # the val split's ground-truth metric folder holds exactly the target frames
    val = load_lego_json(layout.json("val"))
    assert all((layout.gt_dir / a.image_1).is_file() for a in val)


def test_bad_rows_are_reported_with_file_row_and_field(layout, tmp_path):
    data = json.loads(layout.json("train").read_text())
    clips = list(data)
    first, second = clips[0], clips[1]
    data[first]["0"].pop("image_1")
    data[first]["1"]["image_0"] = "../../../etc/passwd"
    data[second]["0"]["image_1"] = "missing/frame.jpg"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    issues = {(i.row, i.field): i.message for i in validate_lego_file(bad, layout.frames_dir("train"))}
    assert issues[(0, f"[{first}][0].image_1")] == "missing or not a non-empty string"
    assert "escapes the data root" in issues[(1, f"[{first}][1].image_0")]
    assert "file not found" in issues[(2, f"[{second}][0].image_1")]
    with pytest.raises(DataFormatError, match=r"bad\.json, row 0, field '\[.*\]\[0\]\.image_1'"):
        load_lego_json(bad)
    data[first]["0"]["image_1"] = data[first]["0"]["image_0"]
    bad.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=r"row 1, field .*image_0.*escapes the data root"):
        convert_file(bad, "ldm", layout.frames_dir("train"), layout.egogen, tmp_path / "x.jsonl", "ego4d")
    assert not (tmp_path / "x.jsonl").exists()


def test_bad_curation_rows(layout, tmp_path):
    rows = json.loads(layout.curation.read_text())
    rows[0]["conversations"][1]["from"] = "human"
    rows[1]["conversations"][0]["value"] = "<image><image> two images"
    rows[2].pop("image")
    bad = tmp_path / "curation.json"
    bad.write_text(json.dumps(rows))
    issues = {(i.row, i.field): i.message for i in validate_lego_file(bad, layout.frames_dir("train"))}
    assert issues[(0, "conversations[1].from")].startswith("turns must alternate")
    assert issues[(1, "conversations")] == "expected one <image> tag, found 2"
    assert issues[(2, "image")] == "missing or not a path string"
    (tmp_path / "list.json").write_text("{not json")
    assert "not valid JSON" in validate_lego_file(tmp_path / "list.json")[0].message


def test_curation_to_sharegpt_reroots_frames_under_the_media_root(layout, tmp_path):
    before = _digest(layout.curation)
    out, n = convert_file(layout.curation, "sharegpt", layout.frames_dir("train"), layout.egogen,
                          tmp_path / "sft.json", "ego4d")
    assert _digest(layout.curation) == before and n == 4
    rows = json.loads(out.read_text())
    row = rows[0]
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    assert row["messages"][0]["content"].count("<image>") == 1 and len(row["images"]) == 1
    assert row["images"][0].startswith("ego4d.fho/train/") and (layout.egogen / row["images"][0]).is_file()
    from egoforge.data.validate import validate_file

    assert validate_file(out, media_dir=layout.egogen) == []  # the foundation's ShareGPT validator agrees


def test_lego_json_to_sharegpt_asks_the_paper_query(layout, tmp_path):
    out, _ = convert_file(layout.json("train"), "sharegpt", layout.frames_dir("train"), layout.egogen,
                          tmp_path / "sft.json", "ego4d")
    row = json.loads(out.read_text())[0]
    assert row["messages"][0]["content"].startswith("<image>How does the person properly ")
    assert row["messages"][1]["content"].startswith("The person reaches for the ")


def test_ldm_index_rows(layout, tmp_path):
    out, n = convert_file(layout.json("val"), "ldm", layout.frames_dir("val"), layout.egogen,
                          tmp_path / "ldm.jsonl", "ego4d")
    rows = read_index(out)
    assert n == len(rows) == 2
    row = rows[0]
    assert row["source"].startswith("ego4d.fho/val/") and row["target"].startswith("ego4d.fho/val/")
    assert row["feature_key"] == load_lego_json(layout.json("val"))[0].image_0
    assert row["prompt"].startswith("The person reaches for")
    with pytest.raises(ValueError, match="refusing to overwrite the source"):
        convert_file(layout.json("val"), "ldm", layout.frames_dir("val"), layout.egogen, layout.json("val"), "ego4d")
    with pytest.raises(DataFormatError, match="GPT-curation"):
        convert_file(layout.curation, "ldm", layout.frames_dir("train"), layout.egogen, tmp_path / "y.jsonl", "ego4d")


def test_missing_prompt_key_names_the_field_unless_falling_back(layout, tmp_path):
    data = json.loads(layout.json("val").read_text())
    for clip in data.values():
        for entry in clip.values():
            entry.pop("llava_forecast_finetune")
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=r"row 0, field .*llava_forecast_finetune"):
        convert_file(raw, "ldm", layout.frames_dir("val"), layout.egogen, tmp_path / "a.jsonl", "ego4d")
    # the validator agrees with the converter: the same rows are errors, fine when falling back to the action
    issues = validate_lego_file(raw, layout.frames_dir("val"), decode=False)
    assert issues and all(i.field.endswith(".llava_forecast_finetune") and i.severity == "error" for i in issues)
    assert validate_lego_file(raw, layout.frames_dir("val"), decode=False, prompt_key=None) == []
    out, _ = convert_file(raw, "ldm", layout.frames_dir("val"), layout.egogen, tmp_path / "a.jsonl", "ego4d",
                          fallback_to_action=True)
    assert read_index(out)[0]["prompt"].startswith("#C C ")
    (tmp_path / "broken.jsonl").write_text('{"id": "x"}\n')
    with pytest.raises(DataFormatError, match=r"broken\.jsonl, row 0, field 'source'"):
        read_index(tmp_path / "broken.jsonl")
