"""The evaluation math against hand-computed values, and kNN on an export vs on the checkpoint it came from."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from egoagent_helpers import STAGE1_STEPS

from egoforge.egoagent.eval.knn import knn_scores, topk_accuracy
from egoforge.egoagent.eval.world import retrieval_metrics, retrieval_ranks
from egoforge.tools.cli import main as cli


def test_weighted_knn_votes_by_hand():
    train = F.normalize(torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]]), dim=-1)
    labels = torch.tensor([0, 0, 1, 2])
    test = torch.tensor([[1.0, 0.0]])
    scores = knn_scores(train, labels, test, num_classes=3, k=3, temperature=0.5)
    # neighbours: cos 1.0 (class 0), 0.8 (class 0), 0.0 (class 1); weights exp(cos / T)
    expected = torch.tensor([[math.exp(2.0) + math.exp(1.6), math.exp(0.0), 0.0]])
    torch.testing.assert_close(scores, expected)
    assert topk_accuracy(scores, torch.tensor([0]), ks=(1, 5)) == {"top1": 100.0, "top5": 100.0}
    assert topk_accuracy(scores, torch.tensor([1]), ks=(1, 2))["top2"] == 100.0
    assert knn_scores(train, labels, test, 3, k=20).shape == (1, 3)  # k capped at the training set


def test_retrieval_ranks_by_hand():
    gallery = torch.eye(4)
    queries = F.normalize(torch.tensor([[1.0, 0.2, 0, 0], [0.9, 0.5, 0, 0], [0, 0, 0.1, 1.0]]), dim=-1)
    ranks = retrieval_ranks(queries, gallery, torch.tensor([0, 1, 2]))
    assert ranks.tolist() == [0, 1, 1]
    metrics = retrieval_metrics(ranks, 4)
    assert metrics["top1"] == pytest.approx(100 / 3) and metrics["top5"] == 100.0
    assert metrics["mean_rank"] == pytest.approx(5 / 3) and metrics["chance_top1"] == 25.0


def test_knn_on_the_hf_export_equals_the_checkpoint(stage1_run, egoagent_data, tmp_path):
    checkpoint = stage1_run / f"checkpoint-{STAGE1_STEPS}"
    assert cli(["egoagent", "export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "hf")]) == 0
    provenance = json.loads((tmp_path / "hf" / "egoforge_export.json").read_text())
    assert provenance["weights"] == "teacher" and provenance["size"] == "tiny"
    results = {}
    for name, model in (("export", tmp_path / "hf"), ("checkpoint", checkpoint)):
        assert cli(["egoagent", "knn", "--model", str(model), "--train", str(egoagent_data / "cities" / "train"),
                    "--val", str(egoagent_data / "cities" / "val"), "--out", str(tmp_path / name)]) == 0
        results[name] = json.loads((tmp_path / name / "results.json").read_text())
    assert results["export"]["top1"] == results["checkpoint"]["top1"]


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli(["egoagent", "knn", "--model", str(tmp_path), "--train", "a", "--val", "b", "--out", "o"]) == 2
    assert "a: ImageFolder root not found" in capsys.readouterr().err
    images = tmp_path / "images" / "class_a"
    images.mkdir(parents=True)
    (images / "x.jpg").write_bytes(b"")
    assert cli(["egoagent", "knn", "--model", str(tmp_path), "--train", str(images.parent), "--val",
                str(images.parent), "--out", str(tmp_path / "o")]) == 2
    assert "not an EgoAgent trainer checkpoint" in capsys.readouterr().err
    assert cli(["egoagent", "poses", "--root", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no takes.json (looked in" in capsys.readouterr().err
    assert cli(["egoagent"]) == 2


def test_world_results_table_has_units_and_compares_the_baseline_with_steps_1plus():
    from egoforge.egoagent.eval.world import world_table
    from egoforge.eval.report import markdown_table

    results = {"retrieval": {"top1": 6.7, "top5": 33.3, "mean_rank": 12.0, "candidates": 48, "chance_top1": 100 / 48,
                             "queries": 9},
               "motion": {"mpjpe_mm": 70.7, "mpjpe_mm_steps_1plus": 71.5, "zero_velocity_mpjpe_mm": 72.6,
                          "windows": 3}}
    rows, columns = world_table(results, "checkpoint-200")
    table = markdown_table(rows, columns, "model").splitlines()
    assert table[0] == ("| model | top-1 (%) | top-5 (%) | mean rank (1 = best) | MPJPE steps 1+ (mm) | "
                        "MPJPE all steps (mm) |")
    baseline = next(line for line in table if line.startswith("| zero-velocity baseline"))
    cells = [c.strip() for c in baseline.strip("|").split("|")]
    assert cells[columns.index("MPJPE steps 1+ (mm)") + 1] == "72.60"  # in the steps-1+ column, never all-steps
    assert cells[columns.index("MPJPE all steps (mm)") + 1] == "–"  # en dash: no value
    chance = next(line for line in table if line.startswith("| chance (48 candidates)"))
    assert "24.50" in chance  # chance mean rank (48 + 1) / 2
