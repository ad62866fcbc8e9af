"""The authors' released rbio1 checkpoints: unsigned S3 download with resume, and loading.

The bucket ``s3://czi-rbio/<variant>/`` is public, so requests are unsigned (no credentials are
read or needed). Each variant is a sharded checkpoint of ~40 GB that the authors load on top of
the base model with ``load_sharded_checkpoint`` (their ``inference.py``); we do the same.

A download
- lists the variant's objects (a missing bucket or variant is a clear error naming both),
- streams each object into ``<dest>/.partial/<key>.part``; an interrupted transfer resumes from
  the bytes already there with a ranged GET guarded by ``IfMatch=<ETag>`` (a changed object
  restarts instead of splicing two versions),
- checks the size and the ETag (MD5, or the multipart MD5-of-MD5s) before moving the file to its
  final name, so a final name never holds a half-written or corrupt file,
- writes ``manifest.json`` (keys, sizes, ETags) last: the workflow's output for the download.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rbio.io import ChecksumError, write_json

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
_CHUNK = 8 << 20


class PublishedCheckpointError(RuntimeError):
    """A published checkpoint that cannot be listed, downloaded or loaded; names bucket/key."""


@dataclass(frozen=True)
class RemoteObject:
    key: str
    size: int
    etag: str  # without quotes

    def relative_to(self, prefix: str) -> str:
        return self.key[len(prefix) :]


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
    """Download (or finish downloading) ``s3://bucket/<variant>/`` into ``dest``; returns dest.

    Safe to rerun after an interruption: complete, verified files are kept, partial ones resume.
    """
    from botocore.exceptions import ClientError
    from tqdm.auto import tqdm

    client = client or s3_client()
    name = published_name(variant)
    prefix = f"{name}/"
    dest = Path(dest)
    objects = list_checkpoint(client, name, bucket)
    total = sum(item.size for item in objects)
    log.info("s3://%s/%s: %d files, %.2f GB", bucket, prefix, len(objects), total / 1e9)
    for item in objects:
        relative = item.relative_to(prefix)
        final = dest / relative
        partial = dest / PARTIAL_DIR / f"{relative}.part"
        if final.exists() and final.stat().st_size == item.size:
            continue  # moved into place only after verification
        partial.parent.mkdir(parents=True, exist_ok=True)
        with tqdm(
            total=item.size, unit="B", unit_scale=True, desc=relative, disable=not progress
        ) as bar:
            try:
                _stream_to(client, bucket, item, partial, bar)
            except ClientError as error:
                if _error_code(error) in ("PreconditionFailed", "412", "InvalidRange", "416"):
                    # The object changed since the partial bytes were fetched: start over.
                    partial.unlink(missing_ok=True)
                    bar.reset()
                    _stream_to(client, bucket, item, partial, bar)
                else:
                    raise PublishedCheckpointError(
                        f"downloading s3://{bucket}/{item.key} failed: {error}"
                    ) from error
        try:
            verify_object(client, bucket, item, partial)
        except ChecksumError:
            partial.unlink(missing_ok=True)  # corrupt: the next run downloads it afresh
            raise
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, final)
    _remove_empty_dirs(dest / PARTIAL_DIR)
    write_json(
        dest / MANIFEST,
        {
            "bucket": bucket,
            "variant": name,
            "total_bytes": total,
            "objects": [asdict(item) | {"path": item.relative_to(prefix)} for item in objects],
        },
    )
    return dest


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


def load_checkpoint_into(model, checkpoint_dir: str | Path) -> dict[str, list[str]]:
    """Load a (sharded) checkpoint on top of ``model``, as the authors' inference does.

    Like theirs, key mismatches do not abort (``strict=False``), but they are reported, and a
    checkpoint that matches none of the model's weights is an error (wrong base model).
    """
    from transformers.trainer_utils import load_sharded_checkpoint

    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        raise PublishedCheckpointError(f"checkpoint folder {folder} does not exist")
    model_keys = set(model.state_dict())
    indexes = list(folder.glob("*.index.json"))
    if indexes:
        loaded_keys = set(json.loads(indexes[0].read_text())["weight_map"])
        result = load_sharded_checkpoint(model, str(folder), strict=False, prefer_safe=True)
        missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    elif (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file

        state = load_file(folder / "model.safetensors")
        loaded_keys = set(state)
        missing, unexpected = model.load_state_dict(state, strict=False)
    else:
        raise PublishedCheckpointError(
            f"{folder}: no *.index.json (sharded checkpoint) nor model.safetensors"
        )
    if not loaded_keys & model_keys:
        raise PublishedCheckpointError(
            f"{folder}: none of its {len(loaded_keys)} weights match the base model's "
            "(wrong model.base for this checkpoint?)"
        )
    tied = {"lm_head.weight"} if getattr(model.config, "tie_word_embeddings", False) else set()
    missing = [key for key in missing if key not in tied]
    if missing or unexpected:
        log.warning(
            "%s: %d base weights not in the checkpoint (kept from the base model), "
            "%d checkpoint weights unused; first: %s %s",
            folder, len(missing), len(unexpected), missing[:3], unexpected[:3],
        )  # fmt: skip
    return {"missing_keys": missing, "unexpected_keys": unexpected}
