"""dataset_info/ declares the support set in LLaMA-Factory's schema; LLaMA-Factory's own loader reads it, and
also reads the download left untouched (its own dataset_info.json), with frames resolved through media_dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ALL_ENTRIES = json.loads((REPO / "dataset_info" / "dataset_info.json").read_text())
# The EgoCross entries; the LEGO entries are resolved by tests/lego.
INFO = {name: entry for name, entry in ALL_ENTRIES.items() if name.startswith("egocross")}


def test_entries_cover_the_support_set_and_every_domain():
    assert set(INFO) == {"egocross", "egocross_animal", "egocross_industry", "egocross_xsports", "egocross_surgery"}
    for name, entry in INFO.items():
        assert entry["formatting"] == "sharegpt" and entry["columns"] == {"messages": "messages", "images": "images"}
        assert entry["tags"]["role_tag"] == "role" and entry["tags"]["user_tag"] == "user"
        assert entry["file_name"].startswith("../data/egocross/"), name


@pytest.mark.parametrize("name", sorted(INFO))
def test_every_file_name_resolves_in_the_documented_layout(name, egocross_work):
    # egocross_work mirrors the checkout: dataset_info/ beside data/egocross/ (the download's --local-dir).
    path = (egocross_work / "dataset_info" / INFO[name]["file_name"]).resolve()
    assert path.is_file(), path
    rows = json.loads(path.read_text())
    assert rows and all((egocross_work / "data" / "egocross" / p).is_file() for r in rows for p in r["images"])


def _load_with_llamafactory(model: Path, dataset_dir: Path, media_dir: Path, dataset: str, out: Path) -> int:
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    args = dict(model_name_or_path=str(model), stage="sft", do_train=True, finetuning_type="lora",
                dataset_dir=str(dataset_dir), media_dir=str(media_dir), dataset=dataset, template="qwen3_vl",
                cutoff_len=2048, output_dir=str(out), overwrite_cache=True, image_max_pixels=16384,
                image_min_pixels=1024, preprocessing_num_workers=1, report_to="none", bf16=False)
    model_args, data_args, training_args, *_ = get_train_args(args)
    modules = load_tokenizer(model_args)
    template = get_template_and_fix_tokenizer(modules["tokenizer"], data_args)
    dataset = get_dataset(template, model_args, data_args, training_args, stage="sft", **modules)["train_dataset"]
    return len(dataset)


def test_llamafactory_loads_our_entries(egocross_work, tiny_qwen3_vl, tmp_path):
    n = _load_with_llamafactory(tiny_qwen3_vl, egocross_work / "dataset_info", egocross_work / "data" / "egocross",
                                "egocross_surgery,egocross_animal", tmp_path)
    assert n == 6


def test_llamafactory_loads_the_untouched_download(egocross_work, tiny_qwen3_vl, tmp_path):
    download = egocross_work / "data" / "egocross"
    assert json.loads((download / "dataset_info.json").read_text())["egocross"]["file_name"] == "train.json"
    assert _load_with_llamafactory(tiny_qwen3_vl, download, download, "egocross", tmp_path) == 12
