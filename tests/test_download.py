"""`egoforge download`: the real ModelScope calls with the right arguments; a clear error when offline."""

from __future__ import annotations

import importlib
import io
import zipfile
from pathlib import Path

import pytest

from egoforge.data.testbed_layout import finish_download
from egoforge.data.validate import validate_file
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


def test_unknown_source(capsys):
    from egoforge.data.errors import InputError

    with pytest.raises(InputError, match="unknown source"):
        dl.download("nope", "x")
    assert cli(["download", "nope", "--local-dir", "x"]) == 2  # bad input, not a failed download
    assert "unknown source 'nope'" in capsys.readouterr().err


# --- the EgoCross test set from the Hugging Face Hub ---------------------------------------------------------------

def _fake_hub(monkeypatch, files: dict[str, bytes], calls: list):
    """Replace only the network call: snapshot_download writes ``files`` into local_dir like a download would."""
    import huggingface_hub

    def fake(repo_id, *, repo_type=None, local_dir=None, revision=None, local_files_only=False, **kwargs):
        calls.append({"repo_id": repo_id, "repo_type": repo_type, "local_files_only": local_files_only})
        for name, data in files.items():
            target = Path(local_dir) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.write_bytes(data)
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _zipped(root: Path, members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return buf.getvalue()


def test_testbed_download_as_files_works_with_media_dir(monkeypatch, tmp_path, real_testbed, capsys):
    calls: list = []
    files = {k: v for k, v in _tree(real_testbed).items() if k != "egocross_testbed_answers.json"}
    _fake_hub(monkeypatch, files, calls)
    target = tmp_path / "egocross_test"
    assert cli(["download", "egocross-testbed", "--local-dir", str(target)]) == 0
    assert calls == [{"repo_id": "myuniverse/EgoCross", "repo_type": "dataset", "local_files_only": False}]
    err = capsys.readouterr().err
    assert f"--media-dir {target}" in err
    assert validate_file(target / "egocross_testbed_imgs.json", media_dir=target, decode=False) == []


def test_testbed_download_as_a_zip_is_unpacked_once(monkeypatch, tmp_path, real_testbed, capsys):
    frames = {k: v for k, v in _tree(real_testbed).items() if k.startswith("egocross_testbed/")}
    files = {"egocross_testbed_imgs.json": (real_testbed / "egocross_testbed_imgs.json").read_bytes(),
             "data/egocross_testbed.zip": _zipped(real_testbed, frames)}
    _fake_hub(monkeypatch, files, [])
    target = tmp_path / "dl"
    assert cli(["download", "egocross-testbed", "--local-dir", str(target)]) == 0
    assert f"--media-dir {target / 'data'}" in capsys.readouterr().err
    assert validate_file(target / "egocross_testbed_imgs.json", media_dir=target / "data", decode=False) == []
    layout = finish_download(target)
    assert layout.extracted == () and layout.media_dir == target / "data"  # the second run unpacks nothing


def test_testbed_zip_with_a_traversal_member_is_refused(monkeypatch, tmp_path, real_testbed, capsys):
    files = {"egocross_testbed.zip": _zipped(real_testbed, {"../../evil.txt": b"x"})}
    _fake_hub(monkeypatch, files, [])
    assert cli(["download", "egocross-testbed", "--local-dir", str(tmp_path / "dl")]) == 1
    assert "escapes" in capsys.readouterr().err
    assert not (tmp_path / "evil.txt").exists()


def test_incomplete_testbed_download_says_to_resume(monkeypatch, tmp_path, real_testbed, capsys):
    files = {"egocross_testbed_imgs.json": (real_testbed / "egocross_testbed_imgs.json").read_bytes(),
             "egocross_testbed/README": b"frames still to come"}
    _fake_hub(monkeypatch, files, [])
    assert cli(["download", "egocross-testbed", "--local-dir", str(tmp_path / "dl")]) == 1
    assert "run the same command again to resume" in capsys.readouterr().err


def test_testbed_download_offline_is_a_clear_error(monkeypatch, tmp_path, capsys):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args, **kwargs):
        raise LocalEntryNotFoundError("cannot find the requested files in the local cache and outgoing traffic "
                                      "has been disabled")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    assert cli(["download", "egocross-testbed", "--local-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "myuniverse/EgoCross" in err and "Hugging Face Hub" in err and "offline" in err and "resume" in err


def test_testbed_real_hub_call_without_network_fails_cleanly(tmp_path, monkeypatch):
    """The genuine huggingface_hub code path, local files only: our error, not a traceback."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(dl.DownloadError, match="could not download dataset myuniverse/EgoCross"):
        dl.download("egocross-testbed", str(tmp_path / "x"), local_files_only=True)


def test_download_reaches_the_hub_without_online_flag(monkeypatch, tmp_path):
    """Every other command runs offline by default; `download` exists to reach the hub."""
    import os

    import huggingface_hub

    seen = {}

    def record(*args, **kwargs):
        seen["offline"] = os.environ.get("HF_HUB_OFFLINE")
        raise huggingface_hub.errors.LocalEntryNotFoundError("stop here")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", record)
    cli(["download", "egocross-testbed", "--local-dir", str(tmp_path)])
    assert seen == {"offline": None}
