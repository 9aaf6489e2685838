"""``egoforge download NAME --local-dir DIR``: fetch a published dataset or checkpoint (ModelScope, or the Hugging
Face Hub for the EgoCross test set)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

HELP = ("download a dataset or checkpoint from ModelScope or the Hugging Face Hub (resumable: files already "
        "complete are skipped)")


@dataclass(frozen=True)
class Source:
    repo_id: str
    kind: str  # "dataset" or "model"
    what: str
    hub: str = "modelscope"  # or "huggingface"


SOURCES = {
    "egocross": Source("YuLi2024/EgoCross_support_set", "dataset", "EgoCross support set (80 samples, 1259 frames)"),
    "egocross-testbed": Source("myuniverse/EgoCross", "dataset", "EgoCross test set (957 questions, no answers)",
                               hub="huggingface"),
    **{
        f"egocross-sft-{d}": Source(f"YuLi2024/EgoCross_sft_qwen3vl4B_{d}", "model",
                                    f"EgoCross full-SFT Qwen3-VL-4B, {d} domain, epoch 2")
        for d in ("animal", "industry", "xsports", "surgery")
    },
}


class DownloadError(RuntimeError):
    pass


def download(name: str, local_dir: str, revision: str | None = None, local_files_only: bool = False) -> str:
    """Download ``name`` (a key of SOURCES or a raw ModelScope id with ``dataset:``/``model:`` prefix)."""
    from egoforge.data.errors import InputError

    source = SOURCES.get(name)
    if source is None:
        kind, _, repo = name.partition(":")
        if kind not in ("dataset", "model") or not repo:
            known = ", ".join(SOURCES)
            raise InputError(None, f"unknown source {name!r}", fix=f"use one of {known}, or dataset:<id> / model:<id>")
        source = Source(repo, kind, repo)
    if os.path.lexists(local_dir) and not os.path.isdir(local_dir):  # not "offline?": the hub was never asked
        raise InputError(local_dir, "--local-dir is a file, not a folder", fix="give a folder to download into")
    if source.hub == "huggingface":
        return _download_hf(source, local_dir, revision, local_files_only)
    from modelscope.hub.snapshot_download import dataset_snapshot_download, snapshot_download

    try:
        from modelscope_hub.errors import HubError  # NetworkError, CacheNotFound, ... (not all are OSErrors)
    except ImportError:  # older modelscope without the split-out hub client
        HubError = OSError
    try:
        if source.kind == "dataset":
            if local_files_only:
                raise DownloadError(f"{source.repo_id}: --local-files-only is only supported for models")
            return dataset_snapshot_download(source.repo_id, local_dir=local_dir, revision=revision)
        return snapshot_download(source.repo_id, local_dir=local_dir, revision=revision,
                                 local_files_only=local_files_only)
    except DownloadError:
        raise
    except (OSError, HubError) as exc:
        raise DownloadError(
            f"could not download {source.kind} {source.repo_id} from ModelScope ({type(exc).__name__}: {exc}). "
            "Is this machine offline? Files already in the folder are kept; run the same command again to resume, "
            f"or copy the {source.kind} into {local_dir} by hand."
        ) from exc


def _download_hf(source: Source, local_dir: str, revision: str | None, local_files_only: bool) -> str:
    """``huggingface_hub.snapshot_download`` into ``local_dir`` (it skips complete files and resumes partial ones),
    then unpack archives and check that the testbed json and its ``--media-dir`` fit together."""
    import httpx
    import huggingface_hub

    from egoforge.data.jsonio import DataFormatError
    from egoforge.data.paths import UnsafePathError
    from egoforge.data.testbed_layout import LayoutError, finish_download

    try:
        path = huggingface_hub.snapshot_download(source.repo_id, repo_type=source.kind, local_dir=local_dir,
                                                 revision=revision, local_files_only=local_files_only)
    except (OSError, httpx.HTTPError) as exc:  # HfHubHTTPError, GatedRepoError, LocalEntryNotFoundError, ...
        gated = " The dataset is gated: accept its terms on huggingface.co and log in (hf auth login)." if (
            type(exc).__name__ in ("GatedRepoError", "RepositoryNotFoundError")) else ""
        raise DownloadError(
            f"could not download {source.kind} {source.repo_id} from the Hugging Face Hub "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}).{gated} Is this machine "
            f"offline? Files already in {local_dir} are kept; run the same command again to resume."
        ) from exc
    try:
        layout = finish_download(path)
    except (LayoutError, UnsafePathError, DataFormatError) as exc:
        raise DownloadError(str(exc)) from exc
    if layout.testbed is None:
        print(f"note: {path} has no egocross_testbed_imgs.json; take datasets/egocross_testbed_imgs.json from "
              "github.com/MyUniverse0726/EgoCross", file=sys.stderr)
    testbed = layout.testbed or "egocross_testbed_imgs.json"
    print(f"test set ready: egoforge evaluate egocross --testbed {testbed} --media-dir {layout.media_dir} ...",
          file=sys.stderr)
    return path


def add_arguments(parser) -> None:
    parser.add_argument("name", help="what to download: " + ", ".join(SOURCES) + ", or dataset:<id> / model:<id>")
    parser.add_argument("--local-dir", required=True, help="target folder, e.g. data/egocross")
    parser.add_argument("--revision", help="a branch, tag or commit of the repository")
    parser.add_argument("--local-files-only", action="store_true",
                        help="models and egocross-testbed: use what is already downloaded")


def main(args) -> int:
    # a DownloadError (the hub failed: exit 1) and input errors (exit 2) are reported by egoforge.tools.cli
    path = download(args.name, args.local_dir, args.revision, args.local_files_only)
    print(path)
    return 0
