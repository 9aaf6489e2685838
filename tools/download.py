"""``egoforge download NAME --local-dir DIR``: fetch a published dataset or checkpoint from ModelScope."""

from __future__ import annotations

import sys
from dataclasses import dataclass

HELP = "download a dataset or checkpoint from ModelScope (resumable: files already complete are skipped)"


@dataclass(frozen=True)
class Source:
    repo_id: str
    kind: str  # "dataset" or "model"
    what: str


SOURCES = {
    "egocross": Source("YuLi2024/EgoCross_support_set", "dataset", "EgoCross support set (80 samples, 1259 frames)"),
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
    source = SOURCES.get(name)
    if source is None:
        kind, _, repo = name.partition(":")
        if kind not in ("dataset", "model") or not repo:
            known = ", ".join(SOURCES)
            raise DownloadError(f"unknown source {name!r}: use one of {known}, or dataset:<id> / model:<id>")
        source = Source(repo, kind, repo)
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


def add_arguments(parser) -> None:
    parser.add_argument("name", help="what to download: " + ", ".join(SOURCES) + ", or dataset:<id> / model:<id>")
    parser.add_argument("--local-dir", required=True, help="target folder, e.g. data/egocross")
    parser.add_argument("--revision", help="a branch, tag or commit of the ModelScope repository")
    parser.add_argument("--local-files-only", action="store_true", help="models only: use the local cache")


def main(args) -> int:
    try:
        path = download(args.name, args.local_dir, args.revision, args.local_files_only)
    except DownloadError as exc:
        print(f"egoforge download: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0
