"""Stage-B recipes read `egoforge lego features` output whatever their `format` says, and name the folder they
looked in when there is nothing to read."""

from __future__ import annotations

import pytest

from egoforge.lego.config import FeaturesConfig, LegoSetupError
from egoforge.lego.dataset import feature_format, open_features


def _shards(folder):
    folder.mkdir(parents=True)
    (folder / "index-c00000.json").write_text('{"meta": {}, "samples": {}}')
    return folder


def test_a_dir_of_lego_features_shards_is_read_as_shards_even_under_format_npy(tmp_path, capsys):
    shards = _shards(tmp_path / "features")
    official = FeaturesConfig(format="npy", dir=str(shards), image_dir="release/img", text_dir="release/txt")
    assert feature_format(official) == "shards"  # the sd15 recipe pointed at `lego features` output
    open_features(official, "data.train_features")
    assert f"data.train_features.dir {shards} holds `egoforge lego features` shards" in capsys.readouterr().err
    assert feature_format(FeaturesConfig(dir=str(shards))) == "shards"  # auto
    assert feature_format(FeaturesConfig(image_dir="a", text_dir="b")) == "npy"  # auto, the official release


def test_nothing_to_read_names_the_folder_looked_in(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LegoSetupError, match=rf"data.train_features.dir {empty}: no `egoforge lego features` shards"):
        open_features(FeaturesConfig(format="npy", dir=str(empty)), "data.train_features")
    with pytest.raises(LegoSetupError, match=rf"data.val_features.image_dir {tmp_path / 'img'}: no such folder"):
        open_features(FeaturesConfig(format="npy", image_dir=str(tmp_path / "img"), text_dir=str(empty)),
                      "data.val_features")
    with pytest.raises(LegoSetupError, match="choose one of"):
        feature_format(FeaturesConfig(format="parquet"))
