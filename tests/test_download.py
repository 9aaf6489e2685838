"""`egoforge download`: the real ModelScope calls with the right arguments; a clear error when offline."""

from __future__ import annotations

import importlib

import pytest

from egoforge.tools import download as dl
from egoforge.tools.cli import main as cli

# `modelscope.hub.snapshot_download` the attribute is the function; the module is what the tool reads from.
ms_snapshot = importlib.import_module("modelscope.hub.snapshot_download")


def test_egocross_support_set_goes_through_dataset_snapshot_download(monkeypatch, tmp_path):
    calls = {}

    def fake(dataset_id, local_dir=None, revision=None, **kwargs):
        calls.update(dataset_id=dataset_id, local_dir=local_dir, revision=revision)
        return local_dir

    monkeypatch.setattr(ms_snapshot, "dataset_snapshot_download", fake)
    assert cli(["download", "egocross", "--local-dir", str(tmp_path / "egocross")]) == 0
    assert calls == {"dataset_id": "YuLi2024/EgoCross_support_set", "local_dir": str(tmp_path / "egocross"),
                     "revision": None}


def test_checkpoints_and_raw_ids(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(ms_snapshot, "snapshot_download",
                        lambda repo, **kw: seen.append((repo, kw["local_files_only"])) or kw["local_dir"])
    dl.download("egocross-sft-surgery", str(tmp_path))
    dl.download("model:Qwen/Qwen3-VL-4B-Instruct", str(tmp_path), local_files_only=True)
    assert seen == [("YuLi2024/EgoCross_sft_qwen3vl4B_surgery", False), ("Qwen/Qwen3-VL-4B-Instruct", True)]


def test_offline_gives_a_clear_error(monkeypatch, tmp_path, capsys):
    from modelscope_hub.errors import NetworkError

    def offline(*args, **kwargs):
        raise NetworkError("[E1020] Connection failed: host='modelscope.cn' NameResolutionError")

    monkeypatch.setattr(ms_snapshot, "dataset_snapshot_download", offline)
    assert cli(["download", "egocross", "--local-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "YuLi2024/EgoCross_support_set" in err and "offline" in err and "resume" in err


def test_real_call_without_network_fails_cleanly(tmp_path):
    """The genuine modelscope code path, cache-only: it must raise our error, not a traceback."""
    with pytest.raises(dl.DownloadError, match="could not download model"):
        dl.download("egocross-sft-animal", str(tmp_path), local_files_only=True)


def test_unknown_source():
    with pytest.raises(dl.DownloadError, match="unknown source"):
        dl.download("nope", "x")
