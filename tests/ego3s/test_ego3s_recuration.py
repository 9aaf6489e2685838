"""ECR's recuration source on verl: a CSM report of the pool that a periodic offline CSM pass (with a recent
checkpoint) refreshes. A refreshed report is picked up; a refresh that cannot be the current policy's (the same
scores again, or a pass that generated nothing because CSM's cache answered every request) is warned about."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest

from egoforge.ego3s.csm_run import load_report
from egoforge.ego3s.ecr import ECRConfig, ECRCurriculum, RescoreFile


def _write(path, samples: dict, generated: int | None = 40, stamp: int = 1) -> None:
    summary = {} if generated is None else {"generations_this_run": generated}
    path.write_text(json.dumps({"settings": {"coarse_side": "both"}, "summary": summary, "samples": samples}))
    os.utime(path, ns=(1, 10**18 + stamp))  # a new mtime even on coarse-grained file systems


def _generated(path):
    return json.loads(Path(path).read_text())["summary"].get("generations_this_run")


def test_a_refreshed_report_is_picked_up_and_a_stale_refresh_is_loud(tmp_path):
    report = tmp_path / "csm_report.json"
    _write(report, {"p1": {"coarse_deviation": 0.4, "kept": True}, "p2": {"coarse_deviation": -0.9, "kept": False}})
    source = RescoreFile(str(report), load_report, _generated)
    assert source.current().scores == {"p1": 0.4, "p2": 0.9} and source.current().rejected == {"p2"}

    # CSM with a newer checkpoint: p2 now needs the video, p1 no longer does.
    _write(report, {"p1": {"coarse_deviation": 0.0, "kept": False}, "p2": {"coarse_deviation": 0.7, "kept": True}},
           stamp=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert source.current().rejected == {"p1"} and source.refreshes == 1

    # Re-run into the same folder: every answer came from the cache, the scores are the old model's.
    _write(report, {"p1": {"coarse_deviation": 0.0, "kept": False}, "p2": {"coarse_deviation": 0.7, "kept": True}},
           generated=0, stamp=3)
    with pytest.warns(UserWarning, match="csm_report.json has the same scores"):
        source.current()
    _write(report, {"p1": {"coarse_deviation": 0.2, "kept": True}, "p2": {"coarse_deviation": 0.7, "kept": True}},
           generated=0, stamp=4)
    with pytest.warns(UserWarning, match="generated nothing"):
        source.current()
    assert source.refreshes == 3
    with pytest.raises(FileNotFoundError):
        RescoreFile(str(tmp_path / "missing.json"), load_report)


def test_recuration_follows_the_refreshed_report_and_never_readmits_its_rejects(tmp_path):
    report = tmp_path / "csm_report.json"
    _write(report, {"n1": {"coarse_deviation": 0.9, "kept": True}, "n2": {"coarse_deviation": 0.5, "kept": True},
                    "n3": {"coarse_deviation": 2.0, "kept": False}})
    source = RescoreFile(str(report), load_report, _generated)
    curriculum = ECRCurriculum([f"a{i}" for i in range(4)], ["n1", "n2", "n3"],
                               ECRConfig(probe_size=4, interval=1, max_replace=0.25))

    def check(step: int):
        curriculum.observe_groups({x: [1.0] * 5 for x in curriculum.slots})  # no group has a signal: stagnant
        current = source.current()
        return curriculum.step(step, lambda ids: current.scores, current.rejected)

    check(1)  # S_1 needs a second group per sample
    assert check(2).added == ["n1"]
    _write(report, {"n2": {"coarse_deviation": 0.1, "kept": False}, "n3": {"coarse_deviation": 0.3, "kept": True}},
           stamp=2)
    assert check(3).added == ["n3"]  # the refreshed report re-admits n3 and rejects n2
    assert check(4).added == [] and "n2" not in curriculum.slots
