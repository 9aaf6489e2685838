"""A hostile-input sweep over ``egoforge`` sub-commands: count tracebacks, silent successes and exit codes.

Not a test (pytest does not collect it): a measurement to run before and after a hardening change::

    python tests/hostile/sweep.py [--work DIR] [--show]

Every case runs the CLI in-process (``egoforge.tools.cli.main``) on valid data from egoforge's own generators and
on broken copies of it. An exception escaping ``main`` is what the console script would print as a traceback.
Outcomes: ``traceback`` (escaped exception or "Traceback" on stderr), ``hang`` (over the per-case alarm),
``exit 0`` (a hostile input accepted silently), ``exit 1`` / ``exit 2`` (refused), and ``source-modified`` when a
case's input changed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import io
import json
import os
import signal
import sys
import tempfile
from pathlib import Path


class Hang(Exception):
    pass


def _digest(path: Path) -> str | None:
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_fixtures(work: Path) -> dict[str, Path]:
    """Valid inputs from egoforge's generators plus the broken files every case family reuses."""
    from egoforge.testing.egocross_data import make_support_set, make_testbed

    f = {}
    f["support"] = make_support_set(work / "support", per_domain=1, frames=(2, 2)) / "train.json"
    f["testbed"], f["answers"] = make_testbed(work / "tb", per_domain=1, frames=(2, 2))
    f["dir"] = work / "a_folder"
    f["dir"].mkdir(exist_ok=True)
    f["missing"] = work / "missing.json"
    bad = work / "bad"
    bad.mkdir(exist_ok=True)
    f["latin1"] = bad / "latin1.json"
    f["latin1"].write_bytes('[{"messages": [{"role": "user", "content": "caf\xe9"}]}]'.encode("latin-1"))
    f["deep"] = bad / "deep.json"
    f["deep"].write_text("[" * 200_000 + "]" * 200_000)
    f["empty"] = bad / "empty.json"
    f["empty"].write_text("")
    f["torn"] = bad / "torn.json"
    f["torn"].write_text('[{"messages": [')
    f["dict"] = bad / "dict.json"
    f["dict"].write_text('{"a": 1}')
    rows = json.loads(f["support"].read_text())
    role_list = json.loads(json.dumps(rows[:1]))
    role_list[0]["messages"][0]["role"] = ["user"]
    f["role_list"] = f["support"].parent / "role_list.json"
    f["role_list"].write_text(json.dumps(role_list))
    nul = json.loads(json.dumps(rows[:1]))
    nul[0]["images"][0] = "frames/a\x00b.jpg"
    f["nul_media"] = f["support"].parent / "nul_media.json"
    f["nul_media"].write_text(json.dumps(nul))
    long_name = json.loads(json.dumps(rows[:1]))
    long_name[0]["images"][0] = "frames/" + "x" * 300 + ".jpg"
    f["long_media"] = f["support"].parent / "long_media.json"
    f["long_media"].write_text(json.dumps(long_name))
    f["a_file"] = work / "a_file.txt"
    f["a_file"].write_text("not a folder\n")
    f["yaml_broken"] = bad / "broken.yaml"
    f["yaml_broken"].write_text("image_max_pixels: [1, 2\n")
    f["yaml_python"] = bad / "python.yaml"
    f["yaml_python"].write_text("image_max_pixels: !!python/object/apply:os.system ['true']\n")
    f["yaml_latin1"] = bad / "latin1.yaml"
    f["yaml_latin1"].write_bytes("trainer: caf\xe9\n".encode("latin-1"))
    f["predictions"] = work / "predictions.jsonl"
    items = json.loads(f["testbed"].read_text())
    f["predictions"].write_text("".join(json.dumps({"id": it["id"], "prediction": "A"}) + "\n" for it in items))
    f["link_out"] = work / "link_out.json"
    with contextlib.suppress(FileExistsError):
        os.symlink(work / "link_target.json", f["link_out"])
    (work / "link_target.json").write_text("precious\n")
    return f


def cases(f: dict[str, Path], work: Path) -> list[tuple[str, list[str], list[Path]]]:
    """(name, argv, sources whose bytes must not change)."""
    out = str(work / "out")
    s, tb, ans = str(f["support"]), str(f["testbed"]), str(f["answers"])
    file_inputs = ["missing", "dir", "latin1", "deep", "empty", "torn", "dict"]
    result = []
    for kind in file_inputs:
        p = str(f[kind])
        result += [
            (f"validate {kind}", ["validate", p, "--quiet"], [f[kind]]),
            (f"prepare {kind}", ["prepare", p, "--out", out + "/prep", "--max-pixels", "4096", "--quiet"], [f[kind]]),
            (f"inspect {kind}", ["inspect", p, "--out", out + f"/inspect_{kind}", "--quiet"], [f[kind]]),
            (f"evaluate score testbed={kind}", ["evaluate", "egocross", "score", "--testbed", p, "--answers", ans,
                                               "--predictions", str(f["predictions"]), "--out", out + "/score"],
             [f[kind]]),
            (f"evaluate score predictions={kind}", ["evaluate", "egocross", "score", "--testbed", tb, "--answers", ans,
                                                   "--predictions", p, "--out", out + "/score"], [f[kind]]),
            (f"ego3s validate {kind}", ["ego3s", "validate", p, "--no-decode"], [f[kind]]),
            (f"ego3s convert {kind}", ["ego3s", "convert", p, "--out", out + "/e3.parquet", "--quiet"], [f[kind]]),
            (f"lego validate {kind}", ["lego", "validate", p], [f[kind]]),
            (f"lego metrics index={kind}", ["lego", "metrics", "--generated", str(f["dir"]), "--index", p,
                                            "--media-root", str(f["dir"]), "--out", out + "/lm", "--quiet"],
             [f[kind]]),
            (f"train {kind}", ["train", p, "--dry-run"], [f[kind]]),
        ]
    for kind in ("role_list", "nul_media", "long_media"):
        p = str(f[kind])
        result += [
            (f"validate {kind}", ["validate", p, "--quiet"], [f[kind]]),
            (f"prepare {kind}", ["prepare", p, "--out", out + "/prep2", "--max-pixels", "4096", "--quiet"], [f[kind]]),
            (f"inspect {kind}", ["inspect", p, "--out", out + f"/inspect_{kind}", "--quiet"], [f[kind]]),
        ]
    for kind in ("missing", "yaml_broken", "yaml_python", "yaml_latin1", "dir"):
        p = str(f[kind])
        result += [
            (f"prepare --recipe {kind}", ["prepare", s, "--out", out + "/prep3", "--recipe", p, "--quiet"],
             [f["support"]]),
            (f"train recipe {kind}", ["train", p, "--dry-run"], []),
        ]
    # outputs that cannot be written
    result += [
        ("validate --json is a folder", ["validate", s, "--quiet", "--json", str(f["dir"])], [f["support"]]),
        ("validate --json under a file", ["validate", s, "--quiet", "--json", str(f["a_file"]) + "/x.json"],
         [f["support"], f["a_file"]]),
        ("validate --json unwritable", ["validate", s, "--quiet", "--json", "/sys/egoforge_sweep/x.json"],
         [f["support"]]),
        ("validate --json symlink", ["validate", s, "--quiet", "--json", str(f["link_out"])],
         [f["support"], work / "link_target.json"]),
        ("score --out is a file", ["evaluate", "egocross", "score", "--testbed", tb, "--answers", ans,
                                   "--predictions", str(f["predictions"]), "--out", str(f["a_file"])], [f["a_file"]]),
        ("score --out unwritable", ["evaluate", "egocross", "score", "--testbed", tb, "--answers", ans,
                                    "--predictions", str(f["predictions"]), "--out", "/sys/egoforge_sweep"], []),
        ("inspect --out is a file", ["inspect", s, "--out", str(f["a_file"]), "--quiet"], [f["a_file"]]),
        ("prepare --out is a file", ["prepare", s, "--out", str(f["a_file"]), "--max-pixels", "4096", "--quiet"],
         [f["a_file"]]),
        ("prepare --out unwritable", ["prepare", s, "--out", "/sys/egoforge_sweep", "--max-pixels", "4096",
                                      "--quiet"], []),
        ("download --local-dir is a file", ["download", "egocross", "--local-dir", str(f["a_file"])], [f["a_file"]]),
    ]
    # models: a missing local folder must fail at once, not be taken for a hub id
    result += [
        ("evaluate run --model missing", ["evaluate", "egocross", "run", "--model", str(work / "no_model"),
                                          "--testbed", tb, "--out", out + "/run", "--quiet"], []),
        ("evaluate run --model hub-like", ["evaluate", "egocross", "run", "--model", "nobody/no-such-model",
                                           "--testbed", tb, "--out", out + "/run2", "--quiet"], []),
        ("select csm --model missing", ["select", "csm", s, "--model", str(work / "no_model"), "--out",
                                        out + "/csm", "--quiet"], [f["support"]]),
        ("egoagent knn --model missing", ["egoagent", "knn", "--model", str(work / "no_model"), "--train",
                                          str(f["dir"]), "--val", str(f["dir"]), "--out", out + "/knn"], []),
    ]
    # numeric arguments out of range
    result += [
        ("egoagent frames --every -2", ["egoagent", "frames", str(f["missing"]), "--out", out + "/fr", "--every",
                                        "-2"], []),
        ("egoagent knn --k 0", ["egoagent", "knn", "--model", str(f["dir"]), "--train", str(f["dir"]), "--val",
                                str(f["dir"]), "--out", out + "/knn", "--k", "0"], []),
        ("egoagent knn --temperature 0", ["egoagent", "knn", "--model", str(f["dir"]), "--train", str(f["dir"]),
                                          "--val", str(f["dir"]), "--out", out + "/knn", "--temperature", "0"], []),
        ("lego metrics --limit -3", ["lego", "metrics", "--generated", str(f["dir"]), "--index", str(f["missing"]),
                                     "--media-root", str(f["dir"]), "--out", out + "/lm", "--limit", "-3"], []),
        ("egom2p prepare --stride -1", ["egom2p", "prepare", str(f["dir"]), "--out", out + "/m2p", "--dataset", "d",
                                        "--stride", "-1"], []),
        ("egom2p prepare --size 0", ["egom2p", "prepare", str(f["dir"]), "--out", out + "/m2p", "--dataset", "d",
                                     "--size", "0"], []),
        ("ego3s convert --fps 0", ["ego3s", "convert", s, "--out", out + "/e3.parquet", "--fps", "0"], []),
        ("ego3s convert --min-frames 16 --max-frames 4", ["ego3s", "convert", s, "--out", out + "/e3.parquet",
                                                          "--min-frames", "16", "--max-frames", "4"], []),
        ("prepare --max-pixels -5", ["prepare", s, "--out", out + "/prep4", "--max-pixels", "-5", "--quiet"], []),
        ("validate --max-print -1", ["validate", s, "--quiet", "--max-print", "-1", "--no-decode"], []),
    ]
    return result


def run_case(argv: list[str], alarm_s: int) -> tuple[str, str]:
    from egoforge.tools.cli import main

    err, out = io.StringIO(), io.StringIO()

    def on_alarm(signum, frame):
        raise Hang()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(alarm_s)
    outcome = None
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(list(argv))
        outcome = f"exit {code}"
    except Hang:
        outcome = "hang"
    except SystemExit as exc:
        outcome = f"exit {exc.code if isinstance(exc.code, int) else 1}"
    except BaseException as exc:  # noqa: BLE001 - this is what the console script would show as a traceback
        outcome = "traceback"
        err.write(f"\n[escaped] {type(exc).__name__}: {str(exc)[:300]}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    stderr = err.getvalue()
    if "Traceback (most recent call last)" in stderr:
        outcome = "traceback"
    return outcome, stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="scratch folder (default: a temporary one)")
    parser.add_argument("--show", action="store_true", help="print each case's last stderr line")
    parser.add_argument("--alarm", type=int, default=60, help="seconds before a case counts as a hang")
    parser.add_argument("--json", help="write the per-case outcomes here")
    opts = parser.parse_args()
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(opts.work or scratch).resolve()
        work.mkdir(parents=True, exist_ok=True)
        fixtures = build_fixtures(work)
        table = cases(fixtures, work)
        outcomes = collections.Counter()
        records = []
        for name, argv, sources in table:
            before = {p: _digest(p) for p in sources}
            outcome, stderr = run_case(argv, opts.alarm)
            modified = [str(p) for p in sources if _digest(p) != before[p]]
            outcomes[outcome] += 1
            if modified:
                outcomes["source-modified"] += 1
            if not fixtures["link_out"].is_symlink():  # an output written over a symlink replaced the link
                outcomes["symlink-replaced"] += 1
                fixtures["link_out"].unlink()
                os.symlink(work / "link_target.json", fixtures["link_out"])
            last = (stderr.strip().splitlines() or [""])[-1][:200]
            records.append({"case": name, "outcome": outcome, "modified": modified, "stderr_last": last})
            if opts.show:
                print(f"{outcome:10s} {name:45s} {last}")
    print(json.dumps({"cases": len(table), **dict(sorted(outcomes.items()))}))
    if opts.json:
        Path(opts.json).write_text(json.dumps(records, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
