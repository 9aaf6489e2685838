"""Hostile inputs to the data commands: ``validate``, ``prepare``, ``inspect``, ``download`` and ``select csm``.

Table-driven: input -> exit code and a fragment of the one-line message; the sources keep their bytes and no
partial output is left. Every case here failed before issue 17 part A: these commands caught input errors
themselves and exited 1 (missing / folder / torn inputs, ``--out`` a file, an unknown download source), crashed with
"internal error TypeError" on a ``role`` list, accepted out-of-range numbers (``--max-pixels -5`` was "math domain
error", ``--max-print -1`` exit 0, ``select csm -G 0`` ran), said "offline?" for ``download --local-dir FILE``, and
``prepare`` served another dataset's frames from a shared cache and took a FIFO frame for a missing file. (Checked
by running this module on the commit before: all failed but the three cases marked "guard", which were already
refused there and stay as regression guards.)
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path

import pytest

from egoforge.tools.cli import main


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(argv: list, capsys, alarm_s: int = 60) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of the CLI; a hang (a FIFO read) fails the test instead of blocking it."""

    def hang(signum, frame):
        raise AssertionError(f"egoforge {argv[0]} blocked for {alarm_s} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(alarm_s)
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse refusals
        code = exc.code
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture()
def data(tmp_path) -> dict:
    """A valid support set and broken copies beside it (function scope: cases may add files under it)."""
    from egoforge.testing.egocross_data import make_support_set

    f = {"work": tmp_path}
    f["support"] = make_support_set(tmp_path / "support", per_domain=1, frames=(2, 2)) / "train.json"
    rows = json.loads(f["support"].read_text())
    role_list = json.loads(json.dumps(rows[:1]))
    role_list[0]["messages"][0]["role"] = ["user"]
    f["role_list"] = f["support"].parent / "role_list.json"
    f["role_list"].write_text(json.dumps(role_list))
    from_list = [{"conversations": [{"from": {"who": "human"}, "value": "<image>What?"},
                                    {"from": "gpt", "value": "A"}], "images": rows[0]["images"][:1]}]
    f["from_list"] = f["support"].parent / "from_list.json"
    f["from_list"].write_text(json.dumps(from_list))
    fifo_frame = json.loads(json.dumps(rows[:1]))
    fifo_frame[0]["images"][0] = "frames/pipe.jpg"
    f["fifo_frame"] = f["support"].parent / "fifo_frame.json"
    f["fifo_frame"].write_text(json.dumps(fifo_frame))
    os.mkfifo(f["support"].parent / "frames" / "pipe.jpg")
    f["fifo_data"] = tmp_path / "data_fifo.json"
    os.mkfifo(f["fifo_data"])
    f["torn"] = tmp_path / "torn.json"
    f["torn"].write_text('[{"messages": [')
    f["a_file"] = tmp_path / "a_file.txt"
    f["a_file"].write_text("not a folder\n")
    f["recipe_bad_budget"] = tmp_path / "recipe.yaml"
    f["recipe_bad_budget"].write_text("image_max_pixels: lots\n")
    f["recipe_list"] = tmp_path / "recipe_list.yaml"
    f["recipe_list"].write_text("- image_max_pixels: 4096\n")
    f["missing"] = tmp_path / "missing.json"
    f["folder"] = tmp_path / "a_folder"
    f["folder"].mkdir()
    f["model"] = tmp_path / "model"
    f["model"].mkdir()
    return f


def _prepare(f, name, *extra):
    return ["prepare", f[name], "--out", f["work"] / "cache", "--max-pixels", "4096", "--quiet", *extra]


def _csm(f, *extra):
    return ["select", "csm", f["support"], "--model", f["model"], "--out", f["work"] / "csm", "--quiet", *extra]


# (case id, argv builder, expected exit code, fragments of stderr, sources that must keep their bytes)
CASES = [
    # validate: an unreadable dataset is bad input (2); a readable one with problems is a finding (1, on stdout)
    ("validate missing", lambda f: ["validate", f["missing"], "--quiet"], 2, ["missing.json: not found"], []),
    ("validate folder", lambda f: ["validate", f["folder"], "--quiet"], 2, ["is a folder"], []),
    ("validate torn", lambda f: ["validate", f["torn"], "--quiet"], 2, ["torn.json", "not valid JSON"], ["torn"]),
    ("validate FIFO", lambda f: ["validate", f["fifo_data"], "--quiet"], 2, ["is not a regular file"], []),
    ("validate --max-print -1", lambda f: ["validate", f["support"], "--quiet", "--max-print", "-1"], 2,
     ["--max-print: must be an integer >= 0"], ["support"]),
    # prepare
    ("prepare missing", lambda f: _prepare(f, "missing"), 2, ["missing.json: not found"], []),
    ("prepare folder", lambda f: _prepare(f, "folder"), 2, ["is a folder"], []),
    ("prepare torn", lambda f: _prepare(f, "torn"), 2, ["torn.json", "not valid JSON"], ["torn"]),
    ("prepare role list", lambda f: _prepare(f, "role_list"), 2,
     ["role_list.json, row 0, field 'messages[0].role': must be a string, got list"], ["role_list"]),
    ("prepare curation from a dict", lambda f: _prepare(f, "from_list"), 2,
     ["from_list.json, row 0, field 'conversations[0].from': must be a string, got dict"], ["from_list"]),
    ("prepare FIFO frame", lambda f: _prepare(f, "fifo_frame"), 2,
     ["fifo_frame.json", "'frames/pipe.jpg'", "is not a regular file"], ["fifo_frame"]),
    ("prepare FIFO dataset", lambda f: _prepare(f, "fifo_data"), 2, ["data_fifo.json: is not a regular file"], []),
    ("prepare --out is a file", lambda f: ["prepare", f["support"], "--out", f["a_file"], "--max-pixels", "4096",
                                           "--quiet"], 2, ["is a file, so it cannot hold"], ["support", "a_file"]),
    ("prepare --max-pixels -5", lambda f: _prepare(f, "support")[:-2] + ["-5", "--quiet"], 2,
     ["--max-pixels: must be an integer >= 1"], ["support"]),
    ("prepare --quality 0", lambda f: _prepare(f, "support", "--quality", "0"), 2,
     ["--quality: must be an integer >= 1"], ["support"]),
    ("prepare --quality 101", lambda f: _prepare(f, "support", "--quality", "101"), 2,
     ["--quality: must be an integer in [1, 100]"], ["support"]),
    # guard: already exit 2 before
    ("prepare --recipe missing", lambda f: ["prepare", f["support"], "--out", f["work"] / "cache", "--recipe",
                                            f["missing"], "--quiet"], 2, ["missing.json: not found"], ["support"]),
    ("prepare --recipe budget not a number", lambda f: ["prepare", f["support"], "--out", f["work"] / "cache",
                                                         "--recipe", f["recipe_bad_budget"], "--quiet"], 2,
     ["recipe.yaml, field 'image_max_pixels': must be an integer >= 1, got 'lots'"], ["support"]),
    ("prepare --recipe a list", lambda f: ["prepare", f["support"], "--out", f["work"] / "cache", "--recipe",
                                           f["recipe_list"], "--quiet"], 2, ["expected a YAML mapping"], ["support"]),
    # guard: already exit 2 before (the CLI's min/max check)
    ("prepare min > max", lambda f: _prepare(f, "support", "--min-pixels", "9000"), 2,
     ["--min-pixels 9000 is larger than --max-pixels 4096"], ["support"]),
    # inspect
    ("inspect missing", lambda f: ["inspect", f["missing"], "--out", f["work"] / "cache", "--quiet"], 2,
     ["missing.json: file not found"], []),
    ("inspect --out is a file", lambda f: ["inspect", f["support"], "--out", f["a_file"], "--quiet"], 2,
     ["exists and is not a folder"], ["support", "a_file"]),
    ("inspect --max-frames 0", lambda f: ["inspect", f["support"], "--out", f["work"] / "cache", "--max-frames", "0"],
     2, ["--max-frames: must be an integer >= 1"], ["support"]),
    # download: refused before the hub is asked
    ("download --local-dir is a file", lambda f: ["download", "egocross", "--local-dir", f["a_file"]], 2,
     ["a_file.txt: --local-dir is a file, not a folder"], ["a_file"]),
    ("download unknown source", lambda f: ["download", "nope", "--local-dir", f["work"] / "cache"], 2,
     ["unknown source 'nope'"], []),
    # select csm: numbers as the paper allows, checked by the parser
    ("select csm -G 0", lambda f: _csm(f, "-G", "0"), 2, ["--num-generations: must be an integer >= 1"], ["support"]),
    ("select csm --temperature -1", lambda f: _csm(f, "--temperature", "-1"), 2,
     ["--temperature: must be a number in [0, inf)"], ["support"]),
    ("select csm --top-p 0", lambda f: _csm(f, "--top-p", "0"), 2, ["--top-p: must be a number in (0, 1]"],
     ["support"]),
    ("select csm --top-p 1.5", lambda f: _csm(f, "--top-p", "1.5"), 2, ["--top-p: must be a number in (0, 1]"],
     ["support"]),
    ("select csm --max-new-tokens 0", lambda f: _csm(f, "--max-new-tokens", "0"), 2,
     ["--max-new-tokens: must be an integer >= 1"], ["support"]),
    ("select csm --batch-size 0", lambda f: _csm(f, "--batch-size", "0"), 2,
     ["--batch-size: must be an integer >= 1"], ["support"]),
    ("select csm --lambda-c 1.5", lambda f: _csm(f, "--lambda-c", "1.5"), 2,
     ["--lambda-c: must be a number in [0, 1]"], ["support"]),
    ("select csm --lambda-f -0.1", lambda f: _csm(f, "--lambda-f", "-0.1"), 2,
     ["--lambda-f: must be a number in [0, 1]"], ["support"]),
    # guard: already exit 2 before (the CLI's min/max check)
    ("select csm --min-frames > --max-frames", lambda f: _csm(f, "--min-frames", "16", "--max-frames", "4"), 2,
     ["--min-frames 16 is larger than --max-frames 4"], ["support"]),
]


@pytest.mark.parametrize("case, argv, code, fragments, sources", CASES, ids=[c[0] for c in CASES])
def test_hostile_input(case, argv, code, fragments, sources, data, capsys):
    before = {name: _digest(data[name]) for name in sources}
    exit_code, _, err = _run(argv(data), capsys)
    assert exit_code == code, err
    for fragment in fragments:
        assert fragment in err, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert {name: _digest(data[name]) for name in sources} == before
    for output in ("cache", "csm"):
        left = data["work"] / output
        assert not left.exists() or not any(p.is_file() and p.suffix in (".jpg", ".png", ".json", ".html")
                                            for p in left.rglob("*")), f"partial output left in {left}"


def test_validate_reports_a_role_list_as_a_finding(data, capsys):
    """A readable dataset with a bad row is a finding (exit 1, listed with file, row, field), not a crash."""
    exit_code, out, err = _run(["validate", data["role_list"], "--quiet", "--no-decode"], capsys)
    assert exit_code == 1, err
    assert f"{data['role_list']}, row 0, field 'messages[0].role': must be a string, got list" in out


def test_validate_reports_a_curation_from_dict_as_a_finding(data, capsys):
    exit_code, out, err = _run(["validate", data["from_list"], "--quiet", "--no-decode"], capsys)
    assert exit_code == 1, err
    assert "row 0, field 'conversations[0].from': must be a string, got dict" in out


def test_validate_reports_a_testbed_dataset_list_as_a_finding(tmp_path, capsys):
    from egoforge.testing.egocross_data import make_testbed

    testbed, _ = make_testbed(tmp_path / "tb", per_domain=1, frames=(2, 2))
    items = json.loads(testbed.read_text())
    items[2]["dataset"] = ["EgoPet"]
    testbed.write_text(json.dumps(items))
    exit_code, out, err = _run(["validate", testbed, "--quiet", "--no-decode"], capsys)
    assert exit_code == 1, err
    assert f"{testbed}, row 2, field 'dataset': must be a string" in out


def test_inspect_shows_a_role_list_as_an_issue(data, capsys):
    exit_code, out, err = _run(["inspect", data["role_list"], "--out", data["work"] / "report", "--quiet"], capsys)
    assert exit_code == 0, err
    assert "1 rows with issues" in out


# --- prepare's cache is keyed by its source -------------------------------------------------------------------


def _two_datasets(tmp_path: Path) -> tuple[Path, Path]:
    """Two support sets with the same relative frame paths but different pixels (different seeds)."""
    from egoforge.testing.egocross_data import make_support_set

    a = make_support_set(tmp_path / "A", per_domain=1, frames=(2, 2), seed=1) / "train.json"
    b = make_support_set(tmp_path / "B", per_domain=1, frames=(2, 2), seed=2) / "train.json"
    return a, b


def _frames(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): _digest(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix in (".jpg", ".png")}


def test_prepare_refuses_a_cache_made_from_another_dataset(tmp_path, capsys):
    """Before: the second run said "already prepared" and served A's frames for B."""
    a, b = _two_datasets(tmp_path)
    cache = tmp_path / "C"
    assert _run(["prepare", a, "--out", cache, "--max-pixels", "4096", "--quiet"], capsys)[0] == 0
    frames_of_a = _frames(cache)
    assert frames_of_a
    code, _, err = _run(["prepare", b, "--out", cache, "--max-pixels", "4096", "--quiet"], capsys)
    assert code == 2, err
    assert "holds frames prepared from the data root" in err and str(a.parent.resolve()) in err
    assert _frames(cache) == frames_of_a  # nothing of B mixed in


def test_prepare_rebuilds_a_frame_whose_source_changed(tmp_path, capsys):
    """Same data root, a source frame replaced by another image of the same name: rebuilt, not served stale."""
    from PIL import Image

    a, _ = _two_datasets(tmp_path)
    cache = tmp_path / "C"
    assert _run(["prepare", a, "--out", cache, "--max-pixels", "4096", "--quiet"], capsys)[0] == 0
    rows = json.loads(a.read_text())
    frame = rows[0]["images"][0]
    source = a.parent / frame
    st = source.stat()
    Image.new("RGB", Image.open(source).size, (255, 0, 0)).save(source, format="JPEG")
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the old mtime: the size differs
    code, out, err = _run(["prepare", a, "--out", cache, "--max-pixels", "4096", "--quiet"], capsys)
    assert code == 0, err
    assert out.startswith("written 1,"), out
    with Image.open(cache / frame) as img:
        assert img.convert("RGB").getpixel((img.width // 2, img.height // 2))[0] > 200


def test_prepare_rebuilds_frames_it_has_no_source_record_for(tmp_path, capsys):
    """A cache from before the manifest recorded sources (or a foreign file in it) is rebuilt, never trusted."""
    a, _ = _two_datasets(tmp_path)
    cache = tmp_path / "C"
    assert _run(["prepare", a, "--out", cache, "--max-pixels", "4096", "--quiet"], capsys)[0] == 0
    manifest = cache / "egoforge_prepare.json"
    old = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({"budget": old["budget"]}))
    code, out, err = _run(["prepare", a, "--out", cache, "--max-pixels", "4096", "--quiet"], capsys)
    assert code == 0 and out.startswith(f"written {len(old['frames'])},"), out + err
    code, out, _ = _run(["prepare", a, "--out", cache, "--max-pixels", "4096", "--quiet"], capsys)
    assert out.startswith("written 0, already prepared"), out
