"""Models are local folders unless the user goes online: a missing folder fails at once naming the path; hub ids
only with --online / EGOFORGE_ONLINE=1 / HF_HUB_OFFLINE=0; the hub is switched off for the command's duration."""

from __future__ import annotations

import os

import pytest

from egoforge.data.models import ModelNotFoundError, hub_mode, resolve_model_path, wants_online


def test_an_existing_folder_is_the_model(tmp_path):
    assert resolve_model_path(tmp_path) == str(tmp_path)
    assert resolve_model_path(str(tmp_path), online=True) == str(tmp_path)


@pytest.mark.parametrize("value", ["checkpoints/missing", "/abs/missing/model", "Qwen/Qwen2.5-VL-7B-Instruct"])
def test_a_missing_folder_fails_naming_it(value):
    with pytest.raises(ModelNotFoundError, match="model folder not found") as info:
        resolve_model_path(value, online=False)
    assert value in str(info.value)


def test_hub_ids_only_online(tmp_path):
    with pytest.raises(ModelNotFoundError, match="--online"):
        resolve_model_path("Qwen/Qwen2.5-VL-7B-Instruct", online=False)
    assert resolve_model_path("Qwen/Qwen2.5-VL-7B-Instruct", online=True) == "Qwen/Qwen2.5-VL-7B-Instruct"
    with pytest.raises(ModelNotFoundError):  # a path that does not exist is not a hub id, online or not
        resolve_model_path(str(tmp_path / "nope" / "model"), online=True)
    with pytest.raises(ModelNotFoundError):
        resolve_model_path("./runs/model", online=True)


def test_a_file_is_not_a_model(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="is a file"):
        resolve_model_path(tmp_path / "model.safetensors", online=True)


@pytest.mark.parametrize(("env", "online"), [({}, False), ({"HF_HUB_OFFLINE": "1"}, False),
                                             ({"EGOFORGE_ONLINE": "1"}, True), ({"HF_HUB_OFFLINE": "0"}, True),
                                             ({"TRANSFORMERS_OFFLINE": "false"}, True)])
def test_wants_online(env, online):
    assert wants_online(env) is online


def test_hub_mode_sets_and_restores(monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with hub_mode(online=False):
        assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
        assert constants.HF_HUB_OFFLINE is True  # already imported: its constant is read at import
        with pytest.raises(ModelNotFoundError):
            resolve_model_path("Qwen/Qwen2.5-VL-7B-Instruct")
    assert "HF_HUB_OFFLINE" not in os.environ and constants.HF_HUB_OFFLINE is False
    with hub_mode(online=True):
        assert resolve_model_path("Qwen/Qwen2.5-VL-7B-Instruct") == "Qwen/Qwen2.5-VL-7B-Instruct"
