"""CSM: the selection arithmetic, the full pipeline through a policy whose behaviour is known, and the real
``egoforge select csm`` on a tiny Qwen2.5-VL (sampled generation, resumable cache, outputs)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from egoforge.ego3s.csm import CSMConfig, deviation_filter, mean_total_reward, response_rewards, select


def test_mean_total_reward_is_the_official_formula():
    formats, accuracies = response_rewards(
        ["<think>a</think><answer>B</answer>", "<answer>B</answer>", "<think>a</think><answer>C</answer>"],
        "<answer>B</answer>", "multiple choice")
    assert formats == [1.0, 0.0, 1.0] and accuracies == [1.0, 1.0, 0.0]
    assert mean_total_reward(formats, accuracies) == pytest.approx(4 / 6)
    assert mean_total_reward([], []) == 0.0


def test_filters_table():
    text = {"a": 0.0, "b": 0.5, "c": 0.5, "d": 0.2}
    video = {"a": 1.0, "b": 0.5, "c": 0.3, "d": 0.4}
    # gaps 1.0, 0.0, -0.2, 0.2 -> mean 0.25 -> deviations 0.75, -0.25, -0.45, -0.05
    mean, dev, kept = deviation_filter({k: video[k] - text[k] for k in text}, 0.12, "both")
    assert mean == pytest.approx(0.25) and kept == {"a", "b", "c"}
    assert deviation_filter({k: video[k] - text[k] for k in text}, 0.12, "positive")[2] == {"a"}
    official = select(text, video, None, CSMConfig.preset("official"))
    assert official.kept == {"a", "b", "c"} and official.fine_mean is None
    # fine filter on the coarse survivors: masking costs a 1.0 of its accuracy, b nothing, c 0.5 -> keep a and c
    acc_video, acc_masked = {"a": 1.0, "b": 0.6, "c": 0.9}, {"a": 0.0, "b": 0.6, "c": 0.4}
    masked = {"a": 0.0, "b": 0.5, "c": 0.6}
    paper = select(text, video, masked, CSMConfig.preset("paper", lambda_c=0.12), video_accuracy=acc_video,
                   masked_accuracy=acc_masked)
    assert paper.coarse_kept == {"a", "b", "c"} and paper.kept == {"a", "c"}
    assert paper.fine_gap == pytest.approx({"a": 1.0, "b": 0.0, "c": 0.5})
    # the coarse test's form instead: reward gaps a 1.0, b 0.0, c -0.3, mean 0.233 -> only a is 0.5 beyond it
    deviation = select(text, video, masked, CSMConfig(lambda_c=0.12, fine_rule="deviation"))
    assert deviation.kept == {"a"}
    assert select(text, video, masked, CSMConfig(lambda_c=0.12), untestable={"b", "c"},
                  video_accuracy=acc_video, masked_accuracy={"a": 0.0}).kept == {"a", "b", "c"}
    with pytest.raises(ValueError, match="masked-condition rewards"):
        select(text, video, {"a": 0.0}, CSMConfig(lambda_c=0.12), video_accuracy=acc_video,
               masked_accuracy={"a": 0.0})
    assert CSMConfig.preset("paper") == CSMConfig(lambda_c=0.1, lambda_f=0.5, fine=True)
    assert CSMConfig.preset("official").lambda_c == 0.12


class PixelReadingPolicy:
    """A deterministic policy whose behaviour is known: it answers the colour question by finding the held ball's
    colour in the frames (it sees nothing without frames, and nothing once the interaction region is masked) and
    answers every other question with "0". Lets the test check which samples CSM keeps."""

    COLORS = {"red": (220, 40, 40), "green": (40, 190, 70), "blue": (40, 90, 235), "yellow": (245, 215, 40)}

    def __init__(self):
        self.calls = 0

    def _colour(self, frames):
        import numpy as np

        pixels = np.stack([np.asarray(f.convert("RGB").resize((48, 32)), dtype=np.int32) for f in frames])
        counts = {name: int((np.abs(pixels - np.array(ref)).sum(-1) < 60).sum()) for name, ref in self.COLORS.items()}
        name, count = max(counts.items(), key=lambda kv: kv[1])
        return name if count >= 4 * len(frames) else None

    def generate(self, requests):
        self.calls += len(requests)
        out = []
        for r in requests:
            answer = "0"
            if "color of the object held" in r.prompt:
                colour = self._colour(r.frames) if r.frames else None
                lines = [line for line in r.prompt.splitlines() if line[:3] in ("A. ", "B. ", "C. ", "D. ")]
                answer = next((line[0] for line in lines if colour and line[3:] == colour), "A")
            out.append([f"<think>looking</think><answer>{answer}</answer>"] * 5)
        return out


def test_csm_pipeline_keeps_the_interaction_dependent_samples(tmp_path):
    from egoforge.ego3s.csm_run import CSMRunOptions, run_csm
    from egoforge.testing.ego3s_data import make_video_r1_dataset

    source = make_video_r1_dataset(tmp_path / "data", n=15, seed=4)
    rows = json.loads(source.read_text())
    mc = {str(r["problem_id"]): r["solution"][8] for r in rows if r["problem_type"] == "multiple choice"}
    policy = PixelReadingPolicy()
    result = run_csm(source, tmp_path / "csm", policy, CSMRunOptions(csm=CSMConfig.preset("paper")))
    report = json.loads(result.report.read_text())
    samples = report["samples"]
    for pid, letter in mc.items():  # the policy reads the colour from the full clip
        assert samples[pid]["video"] == 1.0 and samples[pid]["text"] == (1.0 if letter == "A" else 0.5)
    expected = {pid for pid, letter in mc.items() if letter != "A"}  # only these need the video...
    assert expected and set(result.summary) >= {"kept_fraction", "generations_per_sample"}
    for pid in expected:  # ...and the held object in it: masking the interaction region breaks the answer
        assert samples[pid]["masked"] == 0.5 and samples[pid]["fine_gap"] == 1.0 and samples[pid]["kept"]
    assert {pid for pid, s in samples.items() if s["kept"]} == expected
    selected = json.loads(result.selected_json.read_text())
    assert [str(r["problem_id"]) for r in selected] == [str(r["problem_id"]) for r in rows
                                                         if str(r["problem_id"]) in expected]
    assert selected == [r for r in rows if str(r["problem_id"]) in expected]  # source rows, unchanged
    table = pq.read_table(result.selected_parquet).to_pylist()
    assert [t["extra_info"]["problem_id"] for t in table] == [str(r["problem_id"]) for r in selected]
    assert result.histogram.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # 15 samples x 2 conditions + the coarse survivors x 1, five responses each
    assert report["summary"]["generations_total"] == 5 * (30 + report["summary"]["coarse_kept"])
    calls = policy.calls
    again = run_csm(source, tmp_path / "csm", policy, CSMRunOptions(csm=CSMConfig.preset("paper")))
    assert policy.calls == calls and again.summary["generations_this_run"] == 0  # everything came from the cache


@pytest.mark.slow
def test_select_csm_cli_on_a_tiny_qwen2_5_vl(ego3s_data, tiny_qwen2_5_vl, tmp_path, capsys):
    from egoforge.ego3s.csm_run import CSMRunOptions, run_csm  # noqa: F401  (imported by the CLI too)
    from egoforge.tools.cli import main

    args = ["select", "csm", str(ego3s_data / "train.json"), "--model", str(tiny_qwen2_5_vl), "--out",
            str(tmp_path / "csm"), "-G", "5", "--max-new-tokens", "8", "--batch-size", "5", "--max-pixels",
            str(56 * 56), "--image-max-pixels", str(56 * 56), "--min-pixels", str(28 * 28), "--max-frames", "4",
            "--quiet"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    cache = [json.loads(line) for line in (tmp_path / "csm" / "responses.jsonl").read_text().splitlines()]
    assert {c["condition"] for c in cache} >= {"text", "video"}
    assert all(len(c["responses"]) == 5 and len(c["format"]) == 5 for c in cache)
    assert out["samples"] == 10 and out["generations_total"] == 5 * len(cache)
    assert 0.0 <= out["kept_fraction"] <= 1.0 and (tmp_path / "csm" / "csm_histogram.png").exists()
    # interrupted mid-write: the torn line is redone, nothing else is generated again
    lines = (tmp_path / "csm" / "responses.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "csm" / "responses.jsonl").write_text("".join(lines[:-1]) + lines[-1][:20])
    assert main(args) == 0
    rerun = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rerun["generations_this_run"] == 5 and rerun["generations_total"] == out["generations_total"]


def test_live_rescorer_ranks_pool_samples_by_their_need_for_the_video(tmp_path):
    """ECR's optional re-scoring: CSM's coarse test with the current policy on pool candidates."""
    from egoforge.ego3s.csm_run import CSMRunOptions, live_rescorer
    from egoforge.ego3s.ecr import ECRConfig, ECRCurriculum
    from egoforge.testing.ego3s_data import make_video_r1_dataset

    source = make_video_r1_dataset(tmp_path / "pool", n=10, seed=4, first_id=50)
    samples = {str(r["problem_id"]): r for r in json.loads(source.read_text())}
    rescore = live_rescorer(PixelReadingPolicy(), samples, tmp_path / "pool",
                            CSMRunOptions(csm=CSMConfig(coarse_side="positive")), limit=None)
    scores = rescore(sorted(samples))
    need_video = {k for k, r in samples.items() if r["problem_type"] == "multiple choice" and r["solution"][8] != "A"}
    assert need_video and min(scores[k] for k in need_video) > max(v for k, v in scores.items() if k not in need_video)
    curriculum = ECRCurriculum(["a", "b"], sorted(samples), ECRConfig(probe_size=2, interval=1))
    for step in (1, 2):
        curriculum.observe_groups({"a": [1.0] * 5, "b": [1.0] * 5})
        result = curriculum.step(step, rescore)
    assert set(result.added) <= need_video or need_video <= set(result.added)


def test_report_and_live_rescoring_rank_by_one_rule(tmp_path):
    """A stored report ranks pool candidates by the rule that keeps a sample: |deviation| for the two-sided
    coarse test, the signed deviation for ``coarse_side=positive``; samples it did not keep are listed."""
    from egoforge.ego3s.csm import rank_score
    from egoforge.ego3s.csm_run import load_report

    samples = {"a": {"coarse_deviation": -0.8, "kept": True}, "b": {"coarse_deviation": 0.3, "kept": False},
               "c": {"coarse_deviation": None, "kept": False}}
    for side, expected in (("both", {"a": 0.8, "b": 0.3}), ("positive", {"a": -0.8, "b": 0.3})):
        path = tmp_path / f"{side}.json"
        path.write_text(json.dumps({"settings": {"coarse_side": side}, "samples": samples}))
        report = load_report(path)
        assert report.scores == pytest.approx(expected) and report.rejected == {"b", "c"}
        assert report.scores == {k: rank_score(v["coarse_deviation"], side) for k, v in samples.items()
                                 if v["coarse_deviation"] is not None}


def test_the_response_cache_refuses_another_models_answers(tmp_path):
    """Re-running CSM with a new checkpoint into the same folder must not reuse the old model's responses."""
    from egoforge.ego3s.csm_run import CSMRunOptions, model_fingerprint, run_csm
    from egoforge.testing.ego3s_data import make_video_r1_dataset

    source = make_video_r1_dataset(tmp_path / "data", n=4, seed=1)
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"step 100")
    opts = CSMRunOptions(csm=CSMConfig.preset("paper"), generator=model_fingerprint(model) | {"n": 5})
    run_csm(source, tmp_path / "csm", PixelReadingPolicy(), opts)
    policy = PixelReadingPolicy()
    assert run_csm(source, tmp_path / "csm", policy, opts).summary["generations_this_run"] == 0  # same model: cached
    (model / "model.safetensors").write_bytes(b"step 200, a longer file")  # a newer checkpoint, same folder
    newer = CSMRunOptions(csm=CSMConfig.preset("paper"), generator=model_fingerprint(model) | {"n": 5})
    with pytest.raises(ValueError, match=r"responses.jsonl: cached responses come from another generator .*weights"):
        run_csm(source, tmp_path / "csm", policy, newer)
    assert run_csm(source, tmp_path / "fresh", policy, newer).summary["generations_this_run"] > 0
    (tmp_path / "csm" / "responses.generator.json").unlink()  # a cache of unknown origin is refused too
    with pytest.raises(ValueError, match="its model is unknown"):
        run_csm(source, tmp_path / "csm", policy, opts)


def test_an_empty_selection_writes_no_parquet_and_says_so(tmp_path):
    """A policy that ignores the video keeps nothing: no selected.parquet (not even one left from an earlier run in
    the folder), and the result says None instead of naming a file that does not exist."""
    from egoforge.ego3s.csm_run import CSMRunOptions, run_csm
    from egoforge.testing.ego3s_data import make_video_r1_dataset

    class BlindPolicy:
        def generate(self, requests):
            return [["<think>no look</think><answer>A</answer>"] * 5 for _ in requests]

    source = make_video_r1_dataset(tmp_path / "data", n=6, seed=3)
    (tmp_path / "csm").mkdir()
    (tmp_path / "csm" / "selected.parquet").write_bytes(b"left over from an earlier run")
    result = run_csm(source, tmp_path / "csm", BlindPolicy(), CSMRunOptions(csm=CSMConfig.preset("paper")))
    assert result.summary["kept"] == 0 and result.selected_parquet is None
    assert not (tmp_path / "csm" / "selected.parquet").exists()
    assert json.loads(result.selected_json.read_text()) == []
