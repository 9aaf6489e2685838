"""Ego-Exo4D take identities: ``take_uid`` <-> ``take_name`` <-> the take's folder.

In a real download the take folders are named by the take *name* (``takes.json``: ``"root_dir":
"takes/<take_name>"``, e.g. ``takes/cmu_bike01_1``), while the body-pose and camera annotations are files named by
the take *uid* (``annotations/ego_pose/<split>/body/annotation/<take_uid>.json``). Every place that goes from one to
the other goes through :class:`TakeIndex`: undistortion maps folders to uids, and the stage-2 frame lookup accepts
frame folders named either way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from egoforge.egoagent.data.egoexo_pose import load_takes

TAKES_JSON_PLACES = (Path("takes.json"), Path("metadata") / "takes.json")


@dataclass(frozen=True)
class TakeIndex:
    """Lookups between take uids, names and folder names, built from ``takes.json``."""

    names: dict[str, str]  # take_uid -> take_name
    folders: dict[str, str]  # take_uid -> the last part of root_dir (the take's folder in takes/)
    source: Path

    @classmethod
    def from_takes(cls, takes: dict[str, dict], source: str | os.PathLike) -> TakeIndex:
        folders = {}
        for uid, take in takes.items():
            root_dir = take.get("root_dir")
            has_root = isinstance(root_dir, str) and root_dir
            folders[uid] = PurePosixPath(root_dir).name if has_root else take["take_name"]
        return cls({uid: take["take_name"] for uid, take in takes.items()}, folders, Path(source))

    def uid_of(self, key: str) -> str | None:
        """The take uid that ``key`` (a uid, a take name or a take folder name) denotes; None when unknown."""
        if key in self.names:
            return key
        if not hasattr(self, "_reverse"):
            reverse: dict[str, str] = {}
            for uid in self.names:
                reverse.setdefault(self.folders[uid], uid)
                reverse.setdefault(self.names[uid], uid)
            object.__setattr__(self, "_reverse", reverse)
        return self._reverse.get(key)

    def aliases(self, uid: str) -> list[str]:
        """Folder names a take's frames may live under: its uid first, then its folder and take name."""
        names = [uid]
        for name in (self.folders.get(uid), self.names.get(uid)):
            if name and name not in names:
                names.append(name)
        return names


def load_take_index(path: str | os.PathLike) -> TakeIndex:
    """``takes.json`` (a list of takes with ``take_uid``, ``take_name`` and ``root_dir``) -> :class:`TakeIndex`."""
    return TakeIndex.from_takes(load_takes(path), path)


def find_takes_json(*roots: str | os.PathLike) -> Path | None:
    """The first ``takes.json`` found in ``root/`` or ``root/metadata/`` of the given folders (in order)."""
    for root in roots:
        for place in TAKES_JSON_PLACES:
            candidate = Path(root) / place
            if candidate.is_file():
                return candidate
    return None
