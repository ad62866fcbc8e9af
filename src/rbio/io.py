"""File helpers shared by every stage: atomic writes, checksums, verified downloads."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class ChecksumError(ValueError):
    """A file whose sha256 differs from the expected one."""


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    Works for files and directories: a killed job leaves no half-written output under the final
    name, only a ``.tmp-*`` sibling that the next run ignores.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent)) / final.name
    try:
        yield tmp
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def _strict(value: Any) -> Any:
    """NaN and infinities become null: JSON has no such numbers and strict readers reject them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        return _strict(value.item())
    return value


def write_json(path: str | Path, payload: Any) -> None:
    """Strict JSON (undefined numbers as null), written atomically."""
    text = json.dumps(_strict(payload), indent=2, sort_keys=True, default=str, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")


def write_parquet(frame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_safetensors(serialised: bytes, path: str | Path) -> None:
    """Write a safetensors file (the bytes of ``safetensors.*.save``) with a canonical header.

    safetensors writes the ``__metadata__`` entries in hash order, which changes from process to
    process: two runs would write different bytes for the same tensors. The header is JSON whose
    order the format leaves free (tensor offsets are relative to its end), so it is rewritten with
    sorted keys and padded to 8 bytes as the format asks.
    """
    (size,) = struct.unpack("<Q", serialised[:8])
    header = json.loads(serialised[8 : 8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with atomic_path(path) as tmp:
        tmp.write_bytes(struct.pack("<Q", len(text)) + text + serialised[8 + size :])


def verify_sha256(path: str | Path, expected: str | None) -> str:
    """Return the file's sha256; raise ChecksumError naming the file when it is not ``expected``."""
    actual = sha256_file(path)
    if expected is not None and actual != expected.lower():
        raise ChecksumError(f"{path}: sha256 {actual} does not match the expected {expected}")
    return actual


def copy_verified(src: str | Path, dest: str | Path, expected_sha256: str | None) -> str:
    """Copy a local file into place after checking its sha256."""
    src = Path(src)
    if not src.is_file():
        raise FileNotFoundError(f"{src} does not exist (set data.local_dir or $RBIO_DATA_DIR)")
    digest = verify_sha256(src, expected_sha256)
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    return digest


def download_verified(
    url: str, dest: str | Path, expected_sha256: str | None, timeout: float = 60
) -> str:
    """Stream ``url`` to ``dest`` atomically; a checksum mismatch or broken transfer leaves nothing."""
    import requests

    digest = hashlib.sha256()
    with atomic_path(dest) as tmp:
        with requests.get(url, stream=True, timeout=timeout) as response:
            response.raise_for_status()
            with open(tmp, "wb") as handle:
                for chunk in response.iter_content(chunk_size=1 << 20):
                    digest.update(chunk)
                    handle.write(chunk)
        actual = digest.hexdigest()
        if expected_sha256 is not None and actual != expected_sha256.lower():
            raise ChecksumError(
                f"{url} -> {dest}: sha256 {actual} does not match the expected {expected_sha256}"
            )
    return actual
