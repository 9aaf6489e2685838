"""Atomic outputs: the process umask's modes (not mkstemp's 0600 / mkdtemp's 0700), an existing file's mode kept,
no writing through symlinks or over devices, and no folder replaced that egoforge did not write."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from egoforge.data.atomic import OUTPUT_MARKER, atomic_dir, atomic_write_bytes, atomic_write_json
from egoforge.data.errors import OutputPathError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield lambda value: os.umask(value)
    os.umask(saved)


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                            (0o002, 0o664, 0o775)])
def test_outputs_honour_the_umask(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    written = atomic_write_json(tmp_path / "new" / "results.json", {"a": 1})
    assert _mode(written) == file_mode
    assert _mode(tmp_path / "new") == dir_mode  # parents too, like mkdir -p
    with atomic_dir(tmp_path / "frames") as tmp:
        (tmp / "frame_1.jpg").write_bytes(b"x")
    assert _mode(tmp_path / "frames") == dir_mode
    # the same as what a plain open() / mkdir() gives under this umask
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    (tmp_path / "plain_dir").mkdir()
    assert (_mode(plain), _mode(tmp_path / "plain_dir")) == (file_mode, dir_mode)


def test_rewriting_a_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "shared.json"
    path.write_text("{}")
    path.chmod(0o640)
    atomic_write_json(path, {"b": 2})
    assert _mode(path) == 0o640 and path.read_text().strip().startswith("{")


def test_a_symlink_is_never_written_through(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("precious\n")
    link = tmp_path / "out.txt"
    link.symlink_to(target)
    with pytest.raises(OutputPathError, match="symbolic link"):
        atomic_write_bytes(link, b"clobbered")
    assert link.is_symlink() and target.read_text() == "precious\n"
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputPathError, match="symbolic link"):
        atomic_write_bytes(dangling, b"x")
    assert not (tmp_path / "nowhere").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_a_device_or_fifo_is_not_replaced(tmp_path):
    fifo = tmp_path / "frames.jpg"
    os.mkfifo(fifo)
    with pytest.raises(OutputPathError, match="not a regular file"):
        atomic_write_bytes(fifo, b"x")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    link_to_device = tmp_path / "full.json"
    link_to_device.symlink_to("/dev/full")
    with pytest.raises(OutputPathError):
        atomic_write_bytes(link_to_device, b"x")
    assert Path("/dev/full").is_char_device()


def test_a_folder_is_not_a_file_target(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(OutputPathError, match="is a folder"):
        atomic_write_bytes(tmp_path / "out", b"x")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(OutputPathError, match="is a file, so it cannot hold"):
        atomic_write_bytes(tmp_path / "a_file" / "deeper" / "x.json", b"x")


def test_atomic_dir_never_replaces_a_users_folder(tmp_path):
    mine = tmp_path / "take1"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's\n")
    with pytest.raises(OutputPathError, match="did not write"), atomic_dir(mine) as tmp:
        (tmp / "frame_1.jpg").write_bytes(b"x")
    assert (mine / "notes.txt").read_text() == "the user's\n" and not (mine / "frame_1.jpg").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take1"]  # no temporary folder left behind


def test_atomic_dir_replaces_its_own_output_and_empty_folders(tmp_path):
    out = tmp_path / "frames"
    out.mkdir()  # empty: nothing to lose
    for run in ("first", "second"):
        with atomic_dir(out) as tmp:
            (tmp / f"{run}.jpg").write_bytes(b"x")
        assert sorted(p.name for p in out.iterdir()) == sorted([OUTPUT_MARKER, f"{run}.jpg"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def test_atomic_dir_refuses_a_symlinked_folder(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(OutputPathError, match="symbolic link"), atomic_dir(tmp_path / "link"):
        pass
    assert (tmp_path / "link").is_symlink()


def test_a_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "out") as tmp:
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
