"""The authors' released rbio1 checkpoints: unsigned S3 download with resume, strict loading.

The bucket ``s3://czi-rbio/<variant>/`` is public, so requests are unsigned (no credentials are
read or needed). Each variant is a sharded checkpoint of ~40 GB that the authors load on top of
the base model with ``load_sharded_checkpoint(..., strict=False)`` (their ``inference.py``),
which hides weights missing from the checkpoint and weights the model does not have. Here:

A download
- lists the variant's objects (key, size, ETag; a missing bucket or variant is a clear error
  naming both) and refuses the whole listing, before writing anything, when a key would not land
  inside the checkpoint folder (``../``, a leading ``/``, ``.``/empty segments, a backslash) or
  on one of the download's own names (``manifest.json``, ``.partial/``); the error names the key;
- fetches only what loading needs (``*.json``, ``*.txt``, ``*.safetensors``: config, index,
  shards; not optimizer states or training arguments), each streamed into
  ``<dest>/.partial/<path>.part``; an interrupted transfer resumes from the bytes already there
  with a ranged GET guarded by ``IfMatch=<ETag>`` (a changed object restarts instead of
  splicing two versions);
- checks the size and the ETag (MD5, or the multipart MD5-of-MD5s) before moving a file to its
  final name, so a final name never holds a half-written or corrupt file; a file already there
  is kept only if its size is the listed one;
- checks the checkpoint as a whole: every safetensors file holds the bytes its header promises
  (a truncated shard is named), every shard the index names was downloaded;
- writes ``manifest.json`` (every listed object with its size and ETag, the downloaded ones with
  their path) last, only after all of that: its presence marks a complete, verified download,
  and it is the workflow's output. A rerun first removes it.

Loading (:func:`load_checkpoint_into`) compares the checkpoint's weights (from the shards'
headers, before reading any tensor) with the base model's: a weight the model has and the
checkpoint lacks (except a tied ``lm_head.weight``), a weight the model does not have, or a
shape that differs fails with the lists of keys (:class:`CheckpointMismatchError`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from rbio.io import ChecksumError, write_json
from rbio.progress import progress_bar

log = logging.getLogger(__name__)

BUCKET = "czi-rbio"
# Released variants (authors' README); our config variants are these without the "rbio1-" prefix.
PUBLISHED_VARIANTS: tuple[str, ...] = (
    "rbio1-EXP",
    "rbio1-MLP",
    "rbio1-TF",
    "rbio1-GO",
    "rbio1-GO-C",
    "rbio1-GO-F",
    "rbio1-GO+EXP",
    "rbio1-TF+EXP",
    "rbio1-TF+GO+EXP",
    "rbio1-TF+GO+MLP",
    "rbio1-TF+GO+MLP+EXP",
)
PUBLISHED_PREFIX = "rbio1-"
MANIFEST = "manifest.json"
PARTIAL_DIR = ".partial"
# What loading reads: config and index (*.json), tokenizer text files (*.txt), weights.
LOADING_SUFFIXES: tuple[str, ...] = (".json", ".txt", ".safetensors")
_CHUNK = 8 << 20
_SHOWN_KEYS = 20  # keys listed in an error message (the exception holds all of them)


class PublishedCheckpointError(RuntimeError):
    """A published checkpoint that cannot be listed, downloaded or loaded; names bucket/key."""


class UnsafeKeyError(PublishedCheckpointError):
    """An object key that would be written outside the checkpoint folder (or over its manifest)."""


class CheckpointMismatchError(PublishedCheckpointError):
    """A checkpoint whose weights are not the base model's: the keys in ``missing_keys`` (in the
    model, not in the checkpoint), ``unexpected_keys`` (in the checkpoint, not in the model) and
    ``shape_mismatches`` (``key: checkpoint shape != model shape``)."""

    def __init__(
        self,
        folder: Path,
        missing: Sequence[str],
        unexpected: Sequence[str],
        shapes: Sequence[str] = (),
    ) -> None:
        self.missing_keys, self.unexpected_keys = list(missing), list(unexpected)
        self.shape_mismatches = list(shapes)
        parts = [
            _listed(len(missing), "base-model weight(s) missing from the checkpoint", missing),
            _listed(
                len(unexpected), "checkpoint weight(s) the base model does not have", unexpected
            ),
            _listed(len(shapes), "weight(s) of another shape", shapes),
        ]
        super().__init__(
            f"{folder}: the checkpoint does not match the base model (wrong model.base, or an "
            f"incomplete checkpoint): {'; '.join(part for part in parts if part)}"
        )


def _listed(count: int, what: str, keys: Sequence[str]) -> str:
    if not count:
        return ""
    shown = ", ".join(keys[:_SHOWN_KEYS])
    more = f", … and {count - _SHOWN_KEYS} more" if count > _SHOWN_KEYS else ""
    return f"{count} {what}: {shown}{more}"


@dataclass(frozen=True)
class RemoteObject:
    key: str
    size: int
    etag: str  # without quotes

    def relative_to(self, prefix: str) -> str:
        return self.key[len(prefix) :]


def checkpoint_path(dest: Path, key: str, prefix: str) -> Path:
    """Where the object ``key`` (listed under ``prefix``) goes inside ``dest``.

    The part of the key after the prefix must be a plain relative path: no empty, ``.`` or
    ``..`` segment (``a//b``, ``../x``), no leading ``/``, no backslash or NUL, not one of the
    download's own names, and it must resolve inside ``dest`` (a symbolic link in ``dest`` that
    leads out is refused too). Anything else raises :class:`UnsafeKeyError` naming the key.

    >>> checkpoint_path(Path("/ckpt"), "rbio1-EXP/model-00001.safetensors", "rbio1-EXP/")
    PosixPath('/ckpt/model-00001.safetensors')
    >>> checkpoint_path(Path("/ckpt"), "rbio1-EXP/../../etc/passwd", "rbio1-EXP/")
    Traceback (most recent call last):
    ...
    rbio.evaluation.published.UnsafeKeyError: object key 'rbio1-EXP/../../etc/passwd' does not resolve inside the checkpoint folder /ckpt: a '..' segment; ...
    """
    relative = key[len(prefix) :] if key.startswith(prefix) else key
    segments = relative.split("/")
    reason = None
    if not relative or relative.startswith("/"):
        reason = "an absolute or empty path"
    elif "\\" in relative or "\0" in relative:
        reason = "a backslash or NUL byte"
    elif any(segment in ("", ".", "..") for segment in segments):
        reason = "a '..' segment" if ".." in segments else "an empty or '.' segment"
    elif relative == MANIFEST or segments[0] == PARTIAL_DIR:
        reason = f"it would overwrite the download's own {segments[0]!r}"
    path = dest / PurePosixPath(relative)
    if reason is None and not path.resolve().is_relative_to(dest.resolve()):
        reason = "a symbolic link in the folder leads out of it"
    if reason is not None:
        raise UnsafeKeyError(
            f"object key {key!r} does not resolve inside the checkpoint folder {dest}: "
            f"{reason}; refusing the whole listing (nothing was downloaded)"
        )
    return path


def needed_for_loading(relative: str) -> bool:
    """Whether loading reads the file (``*.json``, ``*.txt``, ``*.safetensors``).

    >>> [needed_for_loading(p) for p in ("model.safetensors.index.json", "optimizer.pt")]
    [True, False]
    """
    return relative.endswith(LOADING_SUFFIXES)


def published_name(variant: str) -> str:
    """``EXP`` or ``rbio1-EXP`` -> ``rbio1-EXP``."""
    return variant if variant.startswith(PUBLISHED_PREFIX) else PUBLISHED_PREFIX + variant


def s3_client(endpoint_url: str | None = None):
    """An unsigned S3 client (public bucket); ``AWS_ENDPOINT_URL`` or ``endpoint_url`` redirects."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-west-2"),
        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 5, "mode": "standard"}),
    )


def _error_code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


def list_checkpoint(client, variant: str, bucket: str = BUCKET) -> list[RemoteObject]:
    """Every object under ``s3://bucket/<variant>/``; clear errors for a missing bucket/variant."""
    from botocore.exceptions import ClientError

    name = published_name(variant)
    prefix = f"{name}/"
    objects: list[RemoteObject] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/"):
                    etag = item["ETag"].strip('"')
                    objects.append(RemoteObject(item["Key"], int(item["Size"]), etag))
    except ClientError as error:
        if _error_code(error) == "NoSuchBucket":
            raise PublishedCheckpointError(f"S3 bucket '{bucket}' does not exist") from error
        raise PublishedCheckpointError(f"listing s3://{bucket}/{prefix} failed: {error}") from error
    if not objects:
        raise PublishedCheckpointError(
            f"no published checkpoint '{name}': s3://{bucket}/{prefix} is empty or absent; "
            f"released variants: {', '.join(PUBLISHED_VARIANTS)}"
        )
    return sorted(objects, key=lambda item: item.key)


def _md5_of(path: Path, part_size: int | None) -> str:
    """Plain MD5 (part_size None) or the multipart ETag form ``md5(md5(part)...)-N``."""
    whole = hashlib.md5(usedforsecurity=False)
    parts: list[bytes] = []
    with open(path, "rb") as handle:
        while block := handle.read(part_size or _CHUNK):
            if part_size is None:
                whole.update(block)
            else:
                parts.append(hashlib.md5(block, usedforsecurity=False).digest())
    if part_size is None:
        return whole.hexdigest()
    return f"{hashlib.md5(b''.join(parts), usedforsecurity=False).hexdigest()}-{len(parts)}"


def _multipart_part_size(client, bucket: str, item: RemoteObject) -> list[int]:
    """Candidate part sizes of a multipart upload: S3's answer for part 1, then common sizes."""
    n_parts = int(item.etag.rsplit("-", 1)[1])
    candidates: list[int] = []
    try:
        head = client.head_object(Bucket=bucket, Key=item.key, PartNumber=1)
        candidates.append(int(head["ContentLength"]))
    except Exception as error:  # noqa: BLE001 - servers without part HEAD: fall back below
        log.debug("HEAD part 1 of %s failed: %s", item.key, error)
    mib = 1 << 20
    candidates.append(math.ceil(item.size / n_parts / mib) * mib)
    candidates += [8 * mib, 16 * mib, 5 * mib, 64 * mib, 100 * mib]
    return [size for size in dict.fromkeys(candidates) if math.ceil(item.size / size) == n_parts]


def verify_object(client, bucket: str, item: RemoteObject, path: Path) -> None:
    """Size and ETag of a downloaded file; raises ChecksumError naming the key."""
    size = path.stat().st_size
    if size != item.size:
        raise ChecksumError(f"s3://{bucket}/{item.key}: {size} bytes on disk, {item.size} listed")
    if "-" not in item.etag:
        actual = _md5_of(path, None)
        if actual != item.etag:
            raise ChecksumError(f"s3://{bucket}/{item.key}: MD5 {actual} != ETag {item.etag}")
        return
    for part_size in _multipart_part_size(client, bucket, item):
        if _md5_of(path, part_size) == item.etag:
            return
    raise ChecksumError(
        f"s3://{bucket}/{item.key}: no part size reproduces the multipart ETag {item.etag}"
    )


def _stream_to(client, bucket: str, item: RemoteObject, partial: Path, progress) -> None:
    """Append the missing bytes of ``item`` to ``partial`` (a ranged GET when some are there)."""
    offset = partial.stat().st_size if partial.exists() else 0
    if offset > item.size:  # stale partial of a different object version
        partial.unlink()
        offset = 0
    if offset == item.size:
        return
    request: dict[str, Any] = {"Bucket": bucket, "Key": item.key, "IfMatch": f'"{item.etag}"'}
    if offset:
        request["Range"] = f"bytes={offset}-"
        log.info("resuming s3://%s/%s at byte %d of %d", bucket, item.key, offset, item.size)
    body = client.get_object(**request)["Body"]
    progress.update(offset)
    with open(partial, "ab") as handle:
        for block in iter(lambda: body.read(1 << 20), b""):
            handle.write(block)
            progress.update(len(block))


def download_checkpoint(
    variant: str,
    dest: str | Path,
    *,
    bucket: str = BUCKET,
    client=None,
    progress: bool = True,
) -> Path:
    """Download (or finish downloading) what loading needs of ``s3://bucket/<variant>/`` into
    ``dest``, verify it, and write ``manifest.json`` last; returns dest.

    Safe to rerun after an interruption: complete, verified files are kept, partial ones resume.
    """
    client = client or s3_client()
    name = published_name(variant)
    prefix = f"{name}/"
    dest = Path(dest)
    objects = list_checkpoint(client, name, bucket)
    # Every key is checked before anything is written: one unsafe key refuses the listing.
    paths = {item.key: checkpoint_path(dest, item.key, prefix) for item in objects}
    needed = [item for item in objects if needed_for_loading(item.relative_to(prefix))]
    skipped = [item for item in objects if not needed_for_loading(item.relative_to(prefix))]
    total = sum(item.size for item in needed)
    log.info(
        "s3://%s/%s: %d files, %.2f GB to fetch; %d files (%.2f GB) not needed for loading: %s",
        bucket, prefix, len(needed), total / 1e9, len(skipped),
        sum(item.size for item in skipped) / 1e9, [item.relative_to(prefix) for item in skipped][:10],
    )  # fmt: skip
    (dest / MANIFEST).unlink(missing_ok=True)  # no longer complete until verified again
    for item in needed:
        relative = item.relative_to(prefix)
        final = paths[item.key]
        if final.is_file() and final.stat().st_size == item.size:
            continue  # moved into place only after verification
        partial = dest / PARTIAL_DIR / f"{relative}.part"
        _fetch_verified(client, bucket, item, partial, progress)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, final)
    _remove_empty_dirs(dest / PARTIAL_DIR)
    verify_checkpoint_files(dest, [item.relative_to(prefix) for item in needed], bucket, prefix)
    write_json(
        dest / MANIFEST,
        {
            "bucket": bucket,
            "variant": name,
            "total_bytes": total,
            "objects": [asdict(item) | {"path": item.relative_to(prefix)} for item in needed],
            "not_downloaded": [asdict(item) for item in skipped],
        },
    )
    return dest


def _fetch_verified(client, bucket: str, item: RemoteObject, partial: Path, progress: bool) -> None:
    """Stream ``item`` into ``partial`` (resuming) and check its size and ETag; a corrupt
    partial file is removed so that the next run downloads it afresh."""
    from botocore.exceptions import ClientError

    partial.parent.mkdir(parents=True, exist_ok=True)
    with progress_bar(
        total=item.size, unit="B", unit_scale=True, desc=partial.name, disable=not progress
    ) as bar:
        try:
            _stream_to(client, bucket, item, partial, bar)
        except ClientError as error:
            if _error_code(error) not in ("PreconditionFailed", "412", "InvalidRange", "416"):
                raise PublishedCheckpointError(
                    f"downloading s3://{bucket}/{item.key} failed: {error}"
                ) from error
            # The object changed since the partial bytes were fetched: start over.
            partial.unlink(missing_ok=True)
            bar.reset()
            _stream_to(client, bucket, item, partial, bar)
    try:
        verify_object(client, bucket, item, partial)
    except ChecksumError:
        partial.unlink(missing_ok=True)
        raise


def verify_checkpoint_files(
    folder: Path, relatives: Sequence[str], bucket: str = BUCKET, prefix: str = ""
) -> None:
    """The downloaded checkpoint as a whole: each safetensors file holds the bytes its header
    promises, each index names only shards that are there."""
    present = set(relatives)
    if not any(relative.endswith(".safetensors") for relative in relatives):
        raise PublishedCheckpointError(
            f"s3://{bucket}/{prefix} holds no *.safetensors weights (only safetensors "
            f"checkpoints are loaded); downloaded: {sorted(present)[:_SHOWN_KEYS]}"
        )
    for relative in relatives:
        if relative.endswith(".safetensors"):
            safetensors_header(folder / relative)
    for relative in relatives:
        if relative.endswith(".safetensors.index.json"):
            parent = PurePosixPath(relative).parent
            shards = set(_read_index(folder / relative).values())
            absent = sorted(shard for shard in shards if str(parent / shard) not in present)
            if absent:
                raise PublishedCheckpointError(
                    f"{relative} names {len(absent)} shard(s) that s3://{bucket}/{prefix} does "
                    f"not hold: {', '.join(absent[:_SHOWN_KEYS])}"
                )


def _read_index(path: Path) -> dict[str, str]:
    try:
        weight_map = json.loads(path.read_text(encoding="utf-8"))["weight_map"]
    except (ValueError, KeyError, TypeError) as error:
        raise PublishedCheckpointError(f"{path}: not a checkpoint index ({error})") from None
    if not isinstance(weight_map, dict):
        raise PublishedCheckpointError(f"{path}: 'weight_map' is not a mapping")
    return weight_map


def safetensors_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{tensor name: (dtype, shape)}`` from a safetensors file's header, after checking that
    the file holds every byte the header promises (a truncated shard fails, naming the file and
    both sizes). Reads the header only, not the tensors."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise PublishedCheckpointError(f"{path}: {size} bytes, too short for safetensors")
        (header_size,) = struct.unpack("<Q", head)
        if 8 + header_size > size:
            raise PublishedCheckpointError(
                f"{path} is truncated: its header alone needs {8 + header_size} bytes, the file "
                f"has {size}"
            )
        try:
            header = json.loads(handle.read(header_size))
            tensors = {
                name: (
                    str(info["dtype"]),
                    tuple(int(n) for n in info["shape"]),
                    info["data_offsets"],
                )
                for name, info in header.items()
                if name != "__metadata__"
            }
            data_end = max((int(end) for *_, (_, end) in tensors.values()), default=0)
        except (ValueError, KeyError, TypeError) as error:
            raise PublishedCheckpointError(
                f"{path}: malformed safetensors header ({error})"
            ) from None
    needed = 8 + header_size + data_end
    if needed > size:
        raise PublishedCheckpointError(
            f"{path} is truncated: its header promises {needed} bytes, the file has {size}"
        )
    return {name: (dtype, shape) for name, (dtype, shape, _) in tensors.items()}


def _remove_empty_dirs(root: Path) -> None:
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    if not any(root.iterdir()):
        root.rmdir()


def checkpoint_files(checkpoint_dir: str | Path) -> Iterable[str]:
    manifest = json.loads((Path(checkpoint_dir) / MANIFEST).read_text())
    return [item["path"] for item in manifest["objects"]]


def _check_against_manifest(folder: Path) -> None:
    """Each downloaded file still has the size the manifest lists (a file truncated or replaced
    after the download fails here, before loading; rerunning the download repairs it)."""
    manifest = json.loads((folder / MANIFEST).read_text())
    for item in manifest["objects"]:
        path = folder / item["path"]
        size = path.stat().st_size if path.is_file() else None
        if size != item["size"]:
            raise PublishedCheckpointError(
                f"{path}: {'missing' if size is None else f'{size} bytes'}, the manifest lists "
                f"{item['size']}; download it again (download_checkpoint fetches files whose "
                "size differs)"
            )


def checkpoint_weights(folder: Path) -> tuple[dict[str, tuple[str, tuple[int, ...]]], Path | None]:
    """``{weight: (dtype, shape)}`` of a checkpoint folder from its shards' headers, and its index
    (None for a single ``model.safetensors``). Every weight of every shard counts (the loader
    reads whole shards); an index entry that its shard does not hold is an error."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = _read_index(index)
        weights: dict[str, tuple[str, tuple[int, ...]]] = {}
        for shard in sorted(set(weight_map.values())):
            if not (folder / shard).is_file():
                raise PublishedCheckpointError(f"{index} names shard {shard}, absent from {folder}")
            weights.update(safetensors_header(folder / shard))
        unheld = sorted(key for key, shard in weight_map.items() if key not in weights)
        if unheld:
            raise PublishedCheckpointError(
                f"{index} maps {len(unheld)} weight(s) to shards that do not hold them: "
                f"{', '.join(unheld[:_SHOWN_KEYS])}"
            )
        return weights, index
    if (folder / "model.safetensors").is_file():
        return safetensors_header(folder / "model.safetensors"), None
    others = sorted(p.name for p in folder.glob("*.index.json"))
    raise PublishedCheckpointError(
        f"{folder}: no model.safetensors.index.json (sharded checkpoint) nor model.safetensors"
        + (f"; found {others} (only safetensors checkpoints are read)" if others else "")
    )


def compare_weights(
    model, weights: dict[str, tuple[str, tuple[int, ...]]]
) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, shape mismatches) of a checkpoint's weights against ``model``'s. A
    tied ``lm_head.weight`` (``tie_word_embeddings``) may be absent: it is the embedding."""
    state = model.state_dict()
    tied = {"lm_head.weight"} if getattr(model.config, "tie_word_embeddings", False) else set()
    missing = sorted(key for key in state if key not in weights and key not in tied)
    unexpected = sorted(key for key in weights if key not in state)
    shapes = sorted(
        f"{key}: {list(shape)} != {list(state[key].shape)}"
        for key, (_, shape) in weights.items()
        if key in state and tuple(state[key].shape) != shape
    )
    return missing, unexpected, shapes


def load_checkpoint_into(model, checkpoint_dir: str | Path) -> dict[str, list[str]]:
    """Load a (sharded) safetensors checkpoint on top of ``model``, strictly.

    The authors load with ``load_sharded_checkpoint(..., strict=False)``; here the checkpoint's
    weights (read from the shards' headers, before any tensor) must be exactly the model's, a
    tied ``lm_head.weight`` excepted, with the same shapes: otherwise
    :class:`CheckpointMismatchError` lists the keys and nothing is loaded. A folder with a
    ``manifest.json`` (a download) is first checked against it. Returns the keys left to the
    base model (the tied head, if absent) and the unexpected keys (none).
    """
    from transformers.trainer_utils import load_sharded_checkpoint

    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        raise PublishedCheckpointError(f"checkpoint folder {folder} does not exist")
    if (folder / MANIFEST).is_file():
        _check_against_manifest(folder)
    weights, index = checkpoint_weights(folder)
    missing, unexpected, shapes = compare_weights(model, weights)
    if missing or unexpected or shapes:
        raise CheckpointMismatchError(folder, missing, unexpected, shapes)
    if index is not None:
        result = load_sharded_checkpoint(model, str(folder), strict=False, prefer_safe=True)
        left, extra = list(result.missing_keys), list(result.unexpected_keys)
    else:
        from safetensors.torch import load_file

        left, extra = model.load_state_dict(load_file(folder / "model.safetensors"), strict=False)
    # The index may list fewer weights than its shards hold; what the shards held was compared.
    left = [key for key in left if key not in weights]
    extra = [key for key in extra if key not in model.state_dict()]
    if extra or any(key != "lm_head.weight" for key in left):
        raise CheckpointMismatchError(folder, left, extra)
    return {"missing_keys": left, "unexpected_keys": extra}
