"""Hostile inputs to real sub-commands: one line naming the file (once), exit 2, no traceback; bugs exit 1 in one
line; ``--debug`` / ``EGOFORGE_DEBUG=1`` show the traceback. Out-of-range numbers are refused by the parser, a
missing ``--model`` folder at once (offline by default), and an output never replaces an input, a link or a folder
egoforge did not write."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from egoforge.tools.cli import main


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    """A small valid support set and testbed from egoforge's generators, and broken files beside them."""
    from egoforge.testing.egocross_data import make_support_set, make_testbed

    work = tmp_path_factory.mktemp("hostile")
    f = {"work": work}
    f["support"] = make_support_set(work / "support", per_domain=1, frames=(2, 2)) / "train.json"
    f["testbed"], f["answers"] = make_testbed(work / "tb", per_domain=1, frames=(2, 2))
    items = json.loads(f["testbed"].read_text())
    f["predictions"] = work / "predictions.jsonl"
    f["predictions"].write_text("".join(json.dumps({"id": it["id"], "prediction": "A"}) + "\n" for it in items))
    f["folder"] = work / "a_folder"
    f["folder"].mkdir()
    f["a_file"] = work / "a_file.txt"
    f["a_file"].write_text("not a folder\n")
    f["latin1"] = work / "latin1.json"
    f["latin1"].write_bytes('[{"messages": [{"role": "user", "content": "caf\xe9"}]}]'.encode("latin-1"))
    f["deep"] = work / "deep.json"
    f["deep"].write_text("[" * 100_000 + "]" * 100_000)
    f["yaml_broken"] = work / "broken.yaml"
    f["yaml_broken"].write_text("image_max_pixels: [1, 2\n")
    f["yaml_python"] = work / "python.yaml"
    f["yaml_python"].write_text("image_max_pixels: !!python/object/apply:os.system ['true']\n")
    return f


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """Exit code and stderr of the CLI; an exception escaping main fails the test (it would be a traceback)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse refusals
        code = exc.code
    return code, capsys.readouterr().err


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# (case id, argv builder, expected exit code, fragments of stderr, path that must be named exactly once)
INPUT_CASES = [
    ("folder as input file", lambda f: ["lego", "validate", f["folder"]], 2, ["is a folder, expected a file"],
     "folder"),
    ("non-UTF-8 file", lambda f: ["lego", "validate", f["latin1"]], 2, ["not UTF-8 text", "byte 0xe9"], "latin1"),
    ("non-UTF-8 recipe", lambda f: ["train", f["latin1"], "--dry-run"], 2, ["not UTF-8 text"], "latin1"),
    ("deeply nested JSON", lambda f: ["validate", f["deep"], "--quiet"], 2, ["nested too deeply"], "deep"),
    ("deeply nested testbed", lambda f: ["evaluate", "egocross", "score", "--testbed", f["deep"], "--answers",
                                         f["answers"], "--predictions", f["predictions"], "--out", f["work"] / "s"],
     2, ["nested too deeply"], "deep"),
    ("testbed is a folder", lambda f: ["evaluate", "egocross", "score", "--testbed", f["folder"], "--answers",
                                       f["answers"], "--predictions", f["predictions"], "--out", f["work"] / "s"],
     2, ["is a folder, expected a file"], "folder"),
    ("recipe is a folder", lambda f: ["train", f["folder"], "--dry-run"], 2, ["is a folder"], "folder"),
    ("missing recipe", lambda f: ["prepare", f["support"], "--out", f["work"] / "p", "--recipe",
                                  f["work"] / "nope.yaml"], 2, ["not found"], None),
    ("broken YAML recipe", lambda f: ["prepare", f["support"], "--out", f["work"] / "p", "--recipe",
                                      f["yaml_broken"]], 2, ["not valid YAML"], "yaml_broken"),
    ("!!python YAML recipe", lambda f: ["prepare", f["support"], "--out", f["work"] / "p", "--recipe",
                                        f["yaml_python"]], 2, ["python/object"], "yaml_python"),
    ("missing LDM index", lambda f: ["lego", "metrics", "--generated", f["folder"], "--index", f["work"] / "no.jsonl",
                                     "--media-root", f["folder"], "--out", f["work"] / "m"], 2, ["file not found"],
     None),
    # outputs
    ("--json is a folder", lambda f: ["validate", f["support"], "--quiet", "--no-decode", "--json", f["folder"]], 2,
     ["is a folder, expected a file path"], "folder"),
    ("--json under a file", lambda f: ["validate", f["support"], "--quiet", "--no-decode", "--json",
                                       f["a_file"] / "x.json"], 2, ["is a file, so it cannot hold"], "a_file"),
    ("--json in an unwritable folder", lambda f: ["validate", f["support"], "--quiet", "--no-decode", "--json",
                                                  "/sys/egoforge_test/x.json"], 2, ["/sys/egoforge_test"], None),
    ("--out is a file", lambda f: ["prepare", f["support"], "--out", f["a_file"], "--max-pixels", "4096",
                                   "--quiet"], None, ["is a file, so it cannot hold"], None),
    ("--json is the dataset", lambda f: ["validate", f["support"], "--quiet", "--no-decode", "--json", f["support"]],
     2, ["is also an input", "refusing to overwrite"], None),
    # models: offline by default, a missing folder fails at once
    ("--model folder missing", lambda f: ["evaluate", "egocross", "run", "--model", f["work"] / "no_model",
                                          "--testbed", f["testbed"], "--out", f["work"] / "run", "--quiet"], 2,
     ["--model", "model folder not found"], None),
    ("--model hub id offline", lambda f: ["evaluate", "egocross", "run", "--model", "nobody/no-such-model",
                                          "--testbed", f["testbed"], "--out", f["work"] / "run", "--quiet"], 2,
     ["model folder not found", "--online"], None),
    ("select --model missing", lambda f: ["select", "csm", f["support"], "--model", f["work"] / "no_model", "--out",
                                          f["work"] / "csm", "--quiet"], 2, ["model folder not found"], None),
    ("--model is a file", lambda f: ["select", "csm", f["support"], "--model", f["a_file"], "--out",
                                     f["work"] / "csm", "--quiet"], 2, ["is a file, expected a model folder"], None),
    # numbers: range-checked by the parser
    ("--every -2", lambda f: ["egoagent", "frames", f["a_file"], "--out", f["work"] / "fr", "--every", "-2"], 2,
     ["argument --every: must be an integer >= 1, got -2"], None),
    ("--k 0", lambda f: ["egoagent", "knn", "--model", f["folder"], "--train", f["folder"], "--val", f["folder"],
                         "--out", f["work"] / "knn", "--k", "0"], 2, ["argument --k: must be an integer >= 1"], None),
    ("--temperature 0", lambda f: ["egoagent", "knn", "--model", f["folder"], "--train", f["folder"], "--val",
                                   f["folder"], "--out", f["work"] / "knn", "--temperature", "0"], 2,
     ["argument --temperature: must be a number in (0, inf)"], None),
    ("--limit -3", lambda f: ["lego", "metrics", "--generated", f["folder"], "--index", f["a_file"], "--media-root",
                              f["folder"], "--out", f["work"] / "m", "--limit", "-3"], 2,
     ["argument --limit: must be an integer >= 1"], None),
    ("--stride -1", lambda f: ["egom2p", "prepare", f["folder"], "--out", f["work"] / "m2p", "--dataset", "d",
                               "--stride", "-1"], 2, ["argument --stride"], None),
    ("--fps 0", lambda f: ["ego3s", "convert", f["support"], "--out", f["work"] / "e.parquet", "--fps", "0"], 2,
     ["argument --fps"], None),
    ("--fps nan", lambda f: ["ego3s", "convert", f["support"], "--out", f["work"] / "e.parquet", "--fps", "nan"], 2,
     ["expected a finite number"], None),
    ("--min-frames > --max-frames", lambda f: ["ego3s", "convert", f["support"], "--out", f["work"] / "e.parquet",
                                               "--min-frames", "16", "--max-frames", "4"], 2,
     ["--min-frames 16 is larger than --max-frames 4"], None),
    ("--top-p 0", lambda f: ["egom2p", "generate", "--task", "rgb2depth", "--clips", f["folder"], "--model",
                             f["folder"], "--out", f["work"] / "g", "--top-p", "0"], 2, ["argument --top-p"], None),
]


@pytest.mark.parametrize(("argv", "code", "fragments", "named_once"),
                         [pytest.param(*case[1:], id=case[0]) for case in INPUT_CASES])
def test_hostile_input_is_one_line_without_traceback(hostile, capsys, argv, code, fragments, named_once):
    sources = {k: _digest(p) for k, p in hostile.items() if isinstance(p, Path) and p.is_file()}
    exit_code, err = run_cli(argv(hostile), capsys)
    if code is not None:
        assert exit_code == code, err
    else:  # reported by the sub-command itself, which keeps its own exit code
        assert exit_code in (1, 2), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err
    if named_once:
        assert err.count(str(hostile[named_once])) == 1, err
    assert {k: _digest(hostile[k]) for k in sources} == sources  # no input was modified
    assert not (hostile["work"] / "run" / "predictions.jsonl").exists()


def test_output_symlink_is_refused_and_its_target_kept(hostile, capsys, tmp_path):
    target = tmp_path / "precious.json"
    target.write_text("precious\n")
    link = tmp_path / "issues.json"
    link.symlink_to(target)
    code, err = run_cli(["validate", hostile["support"], "--quiet", "--no-decode", "--json", link], capsys)
    assert code == 2 and "symbolic link" in err and "Traceback" not in err
    assert link.is_symlink() and target.read_text() == "precious\n"


def test_unexpected_exception_is_one_line_exit_1_and_debug_shows_traceback(monkeypatch, capsys):
    from egoforge.tools import listing

    def broken(args):
        return {}["no such key"]

    monkeypatch.setattr(listing, "main", broken)
    code, err = run_cli(["list"], capsys)
    assert code == 1 and "Traceback" not in err
    assert "internal error KeyError" in err and "bug in egoforge" in err and "--debug" in err
    assert len(err.strip().splitlines()) == 1
    code, err = run_cli(["list", "--debug"], capsys)  # the switch is accepted after the sub-command too
    assert code == 1 and "Traceback (most recent call last)" in err and "KeyError" in err
    monkeypatch.setenv("EGOFORGE_DEBUG", "1")
    code, err = run_cli(["list"], capsys)
    assert code == 1 and "Traceback (most recent call last)" in err


def test_debug_shows_the_traceback_of_an_input_error(hostile, capsys):
    code, err = run_cli(["--debug", "lego", "validate", hostile["folder"]], capsys)
    assert code == 2 and "Traceback (most recent call last)" in err and "IsADirectoryError" in err


def test_commands_run_offline_unless_asked(monkeypatch, capsys):
    from egoforge.tools import listing

    seen = {}

    def record(args):
        seen.update({k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "EGOFORGE_ONLINE")})
        return 0

    monkeypatch.setattr(listing, "main", record)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("EGOFORGE_ONLINE", raising=False)
    assert run_cli(["list"], capsys)[0] == 0
    assert seen == {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "EGOFORGE_ONLINE": None}
    assert "HF_HUB_OFFLINE" not in os.environ  # restored after the command (the CLI also runs in-process)
    assert run_cli(["list", "--online"], capsys)[0] == 0
    assert seen["EGOFORGE_ONLINE"] == "1" and seen["HF_HUB_OFFLINE"] is None
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # the user's explicit choice counts as online
    assert run_cli(["list"], capsys)[0] == 0
    assert seen["EGOFORGE_ONLINE"] == "1" and seen["HF_HUB_OFFLINE"] == "0"


def test_console_script_prints_no_traceback(tmp_path):
    """The real process: stderr of an input error is one line; --debug adds the traceback."""
    env = {**os.environ, "EGOFORGE_DEBUG": ""}
    command = [sys.executable, "-m", "egoforge.tools.cli", "train", str(tmp_path), "--dry-run"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"egoforge train: {tmp_path}: is a folder, expected a file (give the file inside it)"]
    result = subprocess.run([*command, "--debug"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2 and "Traceback (most recent call last)" in result.stderr


def _raised(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the exception under test
        return exc
    raise AssertionError("nothing raised")


def _png_header(width: int, height: int) -> bytes:
    """A PNG signature, an IHDR chunk claiming ``width`` x ``height``, an empty IDAT (PIL checks the size on open)."""
    import struct
    import zlib

    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = b"IDAT"
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
            + struct.pack(">I", 0) + idat + struct.pack(">I", zlib.crc32(idat)))


def _media_cases(tmp: Path):
    import numpy as np
    from PIL import Image

    (tmp / "zero.npy").write_bytes(b"")
    (tmp / "text.npy").write_text("depth values\n")
    (tmp / "text.png").write_text("not an image\n")
    (tmp / "zero.jpg").write_bytes(b"")
    (tmp / "latin1.json").write_bytes(b'["caf\xe9"]')
    (tmp / "bomb.png").write_bytes(_png_header(100_000, 100_000))
    return [
        ("decompression bomb", lambda: Image.open(tmp / "bomb.png"), "bomb.png"),
        ("zero-byte .npy", lambda: np.load(tmp / "zero.npy", allow_pickle=False), "zero.npy"),
        ("text .npy", lambda: np.load(tmp / "text.npy", allow_pickle=False), "text.npy"),
        ("text .png", lambda: Image.open(tmp / "text.png"), "text.png"),
        ("zero-byte .jpg", lambda: Image.open(tmp / "zero.jpg"), "zero.jpg"),
        ("non-UTF-8 read_text", lambda: json.loads((tmp / "latin1.json").read_text(encoding="utf-8")),
         "latin1.json"),
    ]


def test_broken_media_files_are_input_errors_naming_the_file(tmp_path):
    from egoforge.data.errors import INPUT_ERROR_EXIT, describe

    for name, fn, file_name in _media_cases(tmp_path):
        report = describe(_raised(fn))
        assert report.exit_code == INPUT_ERROR_EXIT, name
        assert report.message.count(file_name) == 1, (name, report.message)


def _os_error(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


DESCRIBE_CASES = [
    ("full disk", lambda: _os_error(28, "/data/out/results.json"), 2,
     "/data/out/results.json: no space left on the device (free some space or choose another disk)"),
    ("read-only disk", lambda: _os_error(30, "/ro/out"), 2,
     "/ro/out: read-only file system (choose an output folder on a writable disk)"),
    ("permission", lambda: PermissionError(13, "Permission denied", "/root/x"), 2, "/root/x: permission denied"),
    ("NUL byte in a path", lambda: _raised(lambda: os.stat("a\x00b")), 2, "a path contains a NUL byte"),
    ("JSON without a file", lambda: _raised(lambda: json.loads("{")), 2, "not valid JSON (Expecting"),
    ("egoforge KeyError subclass", lambda: __import__("egoforge.lmms.suite_results", fromlist=["x"])
     .MissingMetricError("results have no metric acc"), 2, "results have no metric acc"),
    ("egoforge RuntimeError: a failure, not input", lambda: __import__("egoforge.llamafactory.launch", fromlist=["x"])
     .TrainingFailed("llamafactory-cli exited 1"), 1, "llamafactory-cli exited 1"),
    ("a bug", lambda: TypeError("unhashable type: 'list'"), 1, "internal error TypeError"),
    ("host out of memory", lambda: MemoryError(), 1, "out of memory (MemoryError)"),
]


@pytest.mark.parametrize(("make", "code", "message"), [pytest.param(*c[1:], id=c[0]) for c in DESCRIBE_CASES])
def test_describe(make, code, message):
    from egoforge.data.errors import describe

    report = describe(make())
    assert report.exit_code == code
    assert message in report.message and "\n" not in report.message
    assert ("bug in egoforge" in report.message) == (message == "internal error TypeError")
