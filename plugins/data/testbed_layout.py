"""The downloaded EgoCross test set: archives unpacked in place, the testbed json and its ``--media-dir`` found.

The published testbed json names its frames ``/egocross_testbed/<dataset>/...``; whatever shape the download has
(frames as files or in zip/tar archives, at the top or one level down), the folder that holds ``egocross_testbed/``
is the ``--media-dir`` that makes the json work unchanged. Archives are unpacked next to themselves, never outside
the download folder (traversal, absolute and link members are refused), and each only once.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from egoforge.data.atomic import atomic_write_bytes, atomic_write_text
from egoforge.data.paths import TESTBED_ROOT, MediaRoot, UnsafePathError, resolve_under

TESTBED_JSON = "egocross_testbed_imgs.json"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
MARKER_DIR = ".egoforge_extracted"
_SKIP_DIRS = {".cache", ".git", MARKER_DIR}


class LayoutError(ValueError):
    """The download does not hold what the testbed needs."""


@dataclass(frozen=True)
class DownloadedTestbed:
    root: Path
    testbed: Path | None  # egocross_testbed_imgs.json, if the download has one
    media_dir: Path  # pass as --media-dir: holds egocross_testbed/
    extracted: tuple[Path, ...] = ()


def _walk(root: Path, max_depth: int = 3):
    for current, dirs, files in os.walk(root):
        depth = len(Path(current).relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and depth < max_depth)
        yield Path(current), dirs, sorted(files)


def _archives(root: Path) -> list[Path]:
    return [folder / name for folder, _, files in _walk(root) for name in files
            if name.lower().endswith(ARCHIVE_SUFFIXES)]


def _extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as bundle:
        for member in bundle.infolist():
            if member.is_dir():
                continue
            if (member.external_attr >> 16) & 0o170000 == 0o120000:
                raise UnsafePathError(f"{archive}: member {member.filename!r} is a symbolic link: refused")
            target = resolve_under(dest, member.filename)
            if target.is_file() and target.stat().st_size == member.file_size:
                continue  # already unpacked by an interrupted earlier run
            atomic_write_bytes(target, bundle.read(member))


def _extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as bundle:
        for member in bundle.getmembers():
            if member.issym() or member.islnk():
                raise UnsafePathError(f"{archive}: member {member.name!r} is a link: refused")
            resolve_under(dest, member.name)  # refuses '..' and absolute members, naming them
        bundle.extractall(dest, filter="data")


def extract_archives(root: str | os.PathLike) -> list[Path]:
    """Unpack every archive under ``root`` next to itself, once (a marker records each finished one)."""
    root = Path(root)
    done = []
    for archive in _archives(root):
        marker = root / MARKER_DIR / (str(archive.relative_to(root)).replace(os.sep, "__") + ".done")
        stamp = f"{archive.stat().st_size} {archive.stat().st_mtime_ns}\n"
        if marker.is_file() and marker.read_text() == stamp:
            continue
        try:
            (_extract_zip if archive.name.lower().endswith(".zip") else _extract_tar)(archive, archive.parent)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
            raise LayoutError(f"{archive}: not a readable archive ({exc}); delete it and download again") from None
        atomic_write_text(marker, stamp)
        done.append(archive)
    return done


def locate_testbed(root: str | os.PathLike) -> DownloadedTestbed:
    """Find the testbed json and the folder holding ``egocross_testbed/``; check the json's first frames resolve."""
    root = Path(root)
    holders = [folder for folder, dirs, _ in _walk(root) if TESTBED_ROOT in dirs]
    if not holders:
        raise LayoutError(f"{root}: no {TESTBED_ROOT}/ folder found (searched 3 levels deep, archives unpacked); "
                          "the download is incomplete: run the same command again to resume")
    if len(holders) > 1:
        raise LayoutError(f"{root}: several {TESTBED_ROOT}/ folders ({', '.join(map(str, holders))}): keep one")
    media_dir = holders[0]
    jsons = [folder / TESTBED_JSON for folder, _, files in _walk(root) if TESTBED_JSON in files]
    testbed = jsons[0] if jsons else None
    if testbed is not None:
        from egoforge.data.egocross import load_testbed

        media = MediaRoot(media_dir, explicit=True)
        items = load_testbed(testbed)
        missing = [f for it in items[:20] for f in it["video_path"][:1] if not media.resolve(f).is_file()]
        if missing:
            raise LayoutError(f"{testbed}: frames such as {missing[0]} are not under {media_dir / TESTBED_ROOT}; "
                              "the download is incomplete: run the same command again to resume")
    return DownloadedTestbed(root, testbed, media_dir)


def finish_download(root: str | os.PathLike) -> DownloadedTestbed:
    """Unpack archives, then locate the testbed (see the module docstring)."""
    extracted = extract_archives(root)
    layout = locate_testbed(root)
    return DownloadedTestbed(layout.root, layout.testbed, layout.media_dir, tuple(extracted))
