"""`egoforge egom2p stats`: samples per modality combination exactly as the trainer's reader joins the shards, and
the clip-by-clip check against the clips they were made from."""

from __future__ import annotations

import json

import numpy as np

from egoforge.egom2p.pretokenize import tokenize_clips
from egoforge.egom2p.shards import TokenShardWriter
from egoforge.testing.egom2p_data import IdTrajectoryTokenizer, write_clips_missing_camera
from egoforge.tools.cli import main as cli


def _tokens(tmp_path):
    write_clips_missing_camera(tmp_path / "clips")
    for m in ("gaze", "cam"):
        tokenize_clips(IdTrajectoryTokenizer(m), m, tmp_path / "clips", tmp_path / "tokens", samples_per_shard=2,
                       progress=False)
    return tmp_path / "tokens"


def test_stats_counts_combinations_and_checks_clips(tmp_path, capsys):
    tokens = _tokens(tmp_path)
    assert cli(["egom2p", "stats", str(tokens), "--clips", str(tmp_path / "clips"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["ds"]
    assert report["combinations"] == {"gaze+cam": 7, "gaze": 1} and report["samples"] == 8
    assert report["clips_checked"] == 8 and report["problems"] == []
    assert cli(["egom2p", "stats", str(tokens)]) == 0
    text = capsys.readouterr().out
    assert "ds: 8 samples" in text and "gaze+cam  7" in text and "gaze      1" in text

    # a clip that gained a modality after tokenizing, and one that is gone: both named, exit status 1
    np.save(tmp_path / "clips" / "ds" / "clip00001" / "cam.npy", np.tile(np.eye(4, dtype=np.float32), (60, 1, 1)))
    (tmp_path / "clips" / "ds" / "clip00005" / "meta.json").unlink()
    assert cli(["egom2p", "stats", str(tokens), "--clips", str(tmp_path / "clips"), "--json"]) == 1
    problems = json.loads(capsys.readouterr().out)["ds"]["problems"]
    assert problems == ["clip clip00001: has gaze+cam, the reader yields gaze",
                        f"clip clip00005: in the token shards (gaze+cam) but not under {tmp_path / 'clips' / 'ds'}"]


def test_stats_refuses_drifted_shards_by_name(tmp_path, capsys):
    """Per-modality positional shards (the old tokenize): refused, not counted as 4 complete + 7 partial clips."""
    from egoforge.egom2p.modalities import MODALITIES

    keys = [f"clip{i:05d}" for i in range(8)]
    for m, have in (("gaze", keys), ("cam", [k for k in keys if k != "clip00001"])):
        info = {"vocab_size": MODALITIES[m].vocab_size, "token_grid": list(MODALITIES[m].token_grid)}
        with TokenShardWriter(tmp_path, m, "ds", info, samples_per_shard=2) as writer:
            for k in have:
                writer.write(k, np.zeros(30, np.int32))
    assert cli(["egom2p", "stats", str(tmp_path)]) == 2
    assert "sit in different shards" in capsys.readouterr().err
