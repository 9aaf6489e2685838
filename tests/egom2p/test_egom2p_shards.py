"""Token shards (WebDataset tars) and the masked mixture stream: round trips, joins across modalities, unavailable
modalities, weights, determinism, resume skipping, rank splitting and clear errors."""

from __future__ import annotations

import itertools
import json
import tarfile

import numpy as np
import pytest
import torch

from egoforge.egom2p.masking import MaskingConfig
from egoforge.egom2p.shards import (
    DataConfig,
    DatasetSpec,
    MixtureBatches,
    ShardFormatError,
    TokenDataset,
    TokenShardWriter,
    read_shard,
)


def _table():
    from egoforge.egom2p.modalities import modality_table

    return modality_table({"rgb": {"token_grid": [5, 4, 4], "vocab_size": 200},
                           "depth": {"token_grid": [5, 4, 4], "vocab_size": 200}})


def _info(table, m):
    return {"tokenizer": {"type": "test"}, "vocab_size": table[m].vocab_size, "token_grid": list(table[m].token_grid)}


def test_writer_round_trip_is_webdataset_compatible(tmp_path):
    import webdataset as wds

    table = _table()
    rows = {f"clip{i}": np.full((30,), i, np.int32) for i in range(5)}
    with TokenShardWriter(tmp_path, "cam", "ds", _info(table, "cam"), samples_per_shard=2) as writer:
        for key, tokens in rows.items():
            writer.write(key, tokens)
    folder = tmp_path / "cam" / "ds"
    assert sorted(p.name for p in folder.iterdir()) == ["index.json", "info.json", "shard-000000.tar",
                                                        "shard-000001.tar", "shard-000002.tar"]
    info = json.loads((folder / "info.json").read_text())
    assert info["samples"] == 5 and info["token_grid"] == [30] and info["vocab_size"] == 256
    read = {}
    for shard in sorted(folder.glob("*.tar")):
        read.update(read_shard(shard))
    assert read.keys() == rows.keys() and all(np.array_equal(read[k], rows[k]) for k in rows)
    samples = list(wds.WebDataset(str(folder / "shard-000000.tar"), shardshuffle=False))
    assert [s["__key__"] for s in samples] == ["clip0", "clip1"] and "npy" in samples[0]
    with pytest.raises(ShardFormatError, match="may not contain"):
        TokenShardWriter(tmp_path, "cam", "other", {}).write("a.b", np.zeros(30))


def test_bad_shards_and_mismatched_tables_are_named(tmp_path, egom2p_tokens):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar")
    with pytest.raises(ShardFormatError, match="bad.tar"):
        read_shard(bad)
    from egoforge.egom2p.modalities import modality_table

    with pytest.raises(ShardFormatError, match=r"rgb/synth_all/info\.json.*modalities\.rgb\.token_grid"):
        TokenDataset(egom2p_tokens, "synth_all", DatasetSpec(), modality_table())  # paper grid vs tiny tokens
    with pytest.raises(ShardFormatError, match="no shards"):
        TokenDataset(egom2p_tokens, "nope", DatasetSpec(), _table())
    with pytest.raises(ShardFormatError, match=r"data\.datasets\.synth_all\.targets: unknown modalities \['imu'\]"):
        TokenDataset(egom2p_tokens, "synth_all", DatasetSpec(targets=["rgb", "imu"]), _table())


def test_join_by_key_marks_missing_modalities_unavailable(tmp_path):
    table = _table()
    for m, keys in (("rgb", ["a", "b", "c"]), ("cam", ["a", "c"])):
        with TokenShardWriter(tmp_path, m, "ds", _info(table, m)) as writer:
            for k in keys:
                writer.write(k, np.ones(table[m].num_tokens, np.int32))
    dataset = TokenDataset(tmp_path, "ds", DatasetSpec(), table)
    samples = dict(dataset.read("shard-000000.tar"))
    assert set(samples["a"]) == {"rgb", "cam"} and set(samples["b"]) == {"rgb"}
    assert dataset.input_ok.tolist() == [True, False, False, True]  # rgb, depth, gaze, cam folders
    stream = MixtureBatches(DataConfig(root=str(tmp_path), datasets={"ds": DatasetSpec()}, shuffle_buffer=1),
                            table, MaskingConfig(40, 40), batch_size=6, seed=0)
    batch = next(iter(stream))
    for i, key in enumerate(batch["keys"]):
        cam = batch["modalities"]["cam"]
        if key == "b":  # no cam tokens for this clip: nothing visible, nothing to predict
            assert cam["input_mask"][i].all() and cam["target_mask"][i].all()
        for m in ("depth", "gaze"):
            assert batch["modalities"][m]["input_mask"][i].all() and batch["modalities"][m]["target_mask"][i].all()


def _stream(tokens, **kwargs):
    datasets = {"synth_all": DatasetSpec(weight=0.75),
                "synth_nogaze": DatasetSpec(weight=0.25, targets=["depth", "cam"])}
    data = DataConfig(root=str(tokens), datasets=datasets, shuffle_buffer=8, num_workers=0)
    return MixtureBatches(data, _table(), MaskingConfig(64, 64), batch_size=4, seed=kwargs.pop("seed", 0), **kwargs)


def test_mixture_weights_availability_and_shapes(egom2p_tokens):
    batches = list(itertools.islice(iter(_stream(egom2p_tokens)), 60))
    b = batches[0]["modalities"]
    assert b["rgb"]["tokens"].shape == (4, 80) and b["gaze"]["tokens"].shape == (4, 30)
    assert b["rgb"]["tokens"].dtype == torch.int64 and b["rgb"]["input_mask"].dtype == torch.bool
    names = [d for batch in batches for d in batch["datasets"]]
    assert 0.65 < names.count("synth_all") / len(names) < 0.85
    for batch in batches:
        mods = batch["modalities"]
        visible = sum((~mods[m]["input_mask"]).sum(1) for m in mods)
        targets = sum((~mods[m]["target_mask"]).sum(1) for m in mods)
        assert (visible <= 64).all() and (targets <= 64).all() and (visible > 0).all()
        for i, name in enumerate(batch["datasets"]):
            if name == "synth_nogaze":
                assert mods["gaze"]["input_mask"][i].all() and mods["gaze"]["target_mask"][i].all()
                assert mods["rgb"]["target_mask"][i].all()  # rgb is an input only for this dataset
            overlap = {m: (~mods[m]["input_mask"][i] & ~mods[m]["target_mask"][i]).any() for m in mods}
            assert not any(overlap.values())


def test_stream_is_deterministic_and_skips_exactly(egom2p_tokens):
    def keys(stream, n):
        return [(b["keys"], [b["modalities"][m]["input_mask"] for m in b["modalities"]])
                for b in itertools.islice(iter(stream), n)]

    full = keys(_stream(egom2p_tokens), 6)
    again = keys(_stream(egom2p_tokens), 6)
    skipped = keys(_stream(egom2p_tokens, skip_batches=4), 2)
    assert [k for k, _ in full] == [k for k, _ in again]
    for (k1, m1), (k2, m2) in zip(full[4:], skipped):
        assert k1 == k2 and all(torch.equal(a, b) for a, b in zip(m1, m2))
    assert [k for k, _ in keys(_stream(egom2p_tokens, seed=1), 6)] != [k for k, _ in full]


def test_ranks_read_disjoint_samples(egom2p_tokens):
    datasets = {"synth_all": DatasetSpec()}
    seen = []
    for rank in range(2):
        data = DataConfig(root=str(egom2p_tokens), datasets=datasets, shuffle_buffer=1)
        stream = MixtureBatches(data, _table(), MaskingConfig(64, 64), 4, seed=0, rank=rank, world_size=2)
        seen.append({k for b in itertools.islice(iter(stream), 8) for k in b["keys"]})
    # three shards of 16: rank 0 reads shards 0 and 2, rank 1 shard 1 (and repeats it sooner)
    assert len(seen[0]) == 32 and len(seen[1]) == 16 and not (seen[0] & seen[1])


@pytest.mark.slow
def test_worker_processes_replay_and_skip(egom2p_tokens):
    """Resume with DataLoader workers: each worker drops its own share of the batches already trained on."""
    def run(skip, n):
        loader = torch.utils.data.DataLoader(_stream(egom2p_tokens, skip_batches=skip), batch_size=None,
                                             num_workers=2, collate_fn=lambda b: b)
        return [b["keys"] for b in itertools.islice(iter(loader), n)]

    assert run(3, 3) == run(0, 6)[3:]


def test_bad_token_counts_are_reported(tmp_path):
    table = _table()
    with TokenShardWriter(tmp_path, "cam", "ds", _info(table, "cam")) as writer:
        writer.write("a", np.ones(29, np.int32))
    with pytest.raises(ShardFormatError, match="a.npy has 29 tokens, expected 30"):
        TokenDataset(tmp_path, "ds", DatasetSpec(), table).read("shard-000000.tar")
    with tarfile.open(tmp_path / "cam" / "ds" / "shard-000000.tar") as tar:
        assert tar.getnames() == ["a.npy"]


# ---- join by clip key across several shards (issue 16) ----

def _all_samples(dataset):
    return [item for shard in dataset.shards for item in dataset.read(shard)]


def test_several_shards_with_a_clip_missing_camera_join_by_key(tmp_path):
    """8 clips, clip 1 without camera, 2 clips per tar: each clip is one sample with all of its modalities (before
    the fix the camera tars drifted one clip against the gaze tars: 4 of 7 complete clips joined, plus 4 gaze-only
    and 3 camera-only samples)."""
    from egoforge.egom2p.modalities import modality_table
    from egoforge.egom2p.pretokenize import tokenize_clips
    from egoforge.testing.egom2p_data import IdTrajectoryTokenizer, write_clips_missing_camera

    write_clips_missing_camera(tmp_path / "clips")
    for m in ("gaze", "cam"):
        tokenize_clips(IdTrajectoryTokenizer(m), m, tmp_path / "clips", tmp_path / "tokens", samples_per_shard=2,
                       progress=False)
    assert len(list((tmp_path / "tokens" / "cam" / "ds").glob("*.tar"))) == 4  # tar 0 holds only clip 0
    dataset = TokenDataset(tmp_path / "tokens", "ds", DatasetSpec(), modality_table())
    samples = _all_samples(dataset)
    assert sorted(k for k, _ in samples) == [f"clip{i:05d}" for i in range(8)]
    for key, sample in samples:
        i = int(key[4:])
        assert set(sample) == ({"gaze"} if i == 1 else {"gaze", "cam"}), key
        assert all((tokens == i).all() for tokens in sample.values()), key  # both halves come from the same clip
    stream = MixtureBatches(DataConfig(root=str(tmp_path / "tokens"), datasets={"ds": DatasetSpec()},
                                       shuffle_buffer=1), modality_table(), MaskingConfig(40, 40), 4, seed=0)
    for batch in itertools.islice(iter(stream), 6):
        mods = batch["modalities"]
        for row, key in enumerate(batch["keys"]):
            i = int(key[4:])
            assert (mods["gaze"]["tokens"][row] == i).all()
            assert (mods["cam"]["tokens"][row] == (0 if i == 1 else i)).all()
            if i == 1:  # no camera: nothing of it visible, nothing of it to predict
                assert mods["cam"]["input_mask"][row].all() and mods["cam"]["target_mask"][row].all()


def test_shards_placed_by_position_per_modality_are_refused_by_name(tmp_path):
    """Shards written the old way (each modality numbered among the clips that have it) must not be joined."""
    from egoforge.egom2p.modalities import modality_table

    table = modality_table()
    keys = [f"clip{i:05d}" for i in range(8)]
    for m, have in (("gaze", keys), ("cam", [k for k in keys if k != "clip00001"])):
        with TokenShardWriter(tmp_path, m, "ds", _info(table, m), samples_per_shard=2) as writer:
            for k in have:
                writer.write(k, np.zeros(30, np.int32))
    with pytest.raises(ShardFormatError, match=r"3 clip key\(s\) sit in different shards.*'clip00002'.*"
                                               r"shard-000001\.tar.*shard-000000\.tar.*tokenize"):
        TokenDataset(tmp_path, "ds", DatasetSpec(), table)
    (tmp_path / "cam" / "ds" / "index.json").unlink()  # shards from another tool: indexed from the tar headers
    with pytest.raises(ShardFormatError, match="sit in different shards"):
        TokenDataset(tmp_path, "ds", DatasetSpec(), table)


def test_index_disagreeing_with_the_tars_is_refused(tmp_path):
    from egoforge.egom2p.modalities import modality_table

    table = modality_table()
    with TokenShardWriter(tmp_path, "cam", "ds", _info(table, "cam"), samples_per_shard=2) as writer:
        for i in range(4):
            writer.write(f"k{i}", np.zeros(30, np.int32))
    folder = tmp_path / "cam" / "ds"
    assert json.loads((folder / "index.json").read_text()) == {"shard-000000.tar": ["k0", "k1"],
                                                              "shard-000001.tar": ["k2", "k3"]}
    tars = {p.name: p.read_bytes() for p in folder.glob("*.tar")}
    (folder / "shard-000000.tar").write_bytes(tars["shard-000001.tar"])  # a tar replaced after writing
    dataset = TokenDataset(tmp_path, "ds", DatasetSpec(), table)
    with pytest.raises(ShardFormatError, match=r"shard-000000\.tar: holds 2 clips but index\.json.*k0"):
        dataset.read("shard-000000.tar")
    (folder / "shard-000001.tar").unlink()
    with pytest.raises(ShardFormatError, match=r"index\.json: lists shards \['shard-000001\.tar'\]"):
        TokenDataset(tmp_path, "ds", DatasetSpec(), table)
    writer = TokenShardWriter(tmp_path, "gaze", "ds", _info(table, "gaze"))
    writer.write("a", np.zeros(30), shard=2)
    with pytest.raises(ShardFormatError, match="written twice"):
        writer.write("a", np.zeros(30), shard=2)
    with pytest.raises(ShardFormatError, match="must not decrease"):
        writer.write("b", np.zeros(30), shard=1)


def test_resumed_tokenize_redoes_a_modality_whose_clip_list_changed(tmp_path):
    """A clip added after tokenizing shifts every later clip's shard: a modality whose own sample count did not
    change (the new clip lacks it) must still be rewritten, or its shards would no longer line up with the others."""
    from egoforge.egom2p.modalities import modality_table
    from egoforge.egom2p.pretokenize import tokenize_clips
    from egoforge.testing.egom2p_data import IdTrajectoryTokenizer, write_clips_missing_camera

    folder = write_clips_missing_camera(tmp_path / "clips", without_cam=())
    for m in ("gaze", "cam"):
        tokenize_clips(IdTrajectoryTokenizer(m), m, tmp_path / "clips", tmp_path / "tokens", samples_per_shard=2,
                       progress=False)
    stamp = (tmp_path / "tokens" / "gaze" / "ds" / "info.json").stat().st_mtime_ns
    new = folder / "clip00002b"  # sorts between clip00002 and clip00003, has a camera but no gaze
    new.mkdir()
    np.save(new / "cam.npy", np.tile(np.eye(4, dtype=np.float32), (60, 1, 1)))
    (new / "meta.json").write_text('{"modalities": ["cam"]}\n')
    for m in ("gaze", "cam"):
        tokenize_clips(IdTrajectoryTokenizer(m), m, tmp_path / "clips", tmp_path / "tokens", samples_per_shard=2,
                       progress=False)
    assert (tmp_path / "tokens" / "gaze" / "ds" / "info.json").stat().st_mtime_ns != stamp  # rewritten
    dataset = TokenDataset(tmp_path / "tokens", "ds", DatasetSpec(), modality_table())
    samples = dict(_all_samples(dataset))
    assert len(samples) == 9 and set(samples["clip00002b"]) == {"cam"}
    assert all(set(s) == {"gaze", "cam"} for k, s in samples.items() if k != "clip00002b")
