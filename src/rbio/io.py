"""File helpers shared by every stage: atomic writes, checksums, verified downloads and reads."""

from __future__ import annotations

import contextlib
import gzip
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


class EncodingError(ValueError):
    """A text file with a byte that is not UTF-8; the message names the file, line and offset."""


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


def verify_acquired(path: str | Path, expected: str | list[str], what: str = "") -> str:
    """Check a copy an acquire step put in place, at the moment it is consumed.

    The acquire step verified the copy when it wrote it, but Snakemake re-runs a consumer on
    whatever lies under that name later (an edit, a restore from elsewhere, a disk error) without
    fetching it again. ``expected`` may list several accepted digests; ``what`` says what they are.
    """
    accepted = [expected] if isinstance(expected, str) else expected
    actual = sha256_file(path)
    if actual not in {digest.lower() for digest in accepted}:
        raise ChecksumError(
            f"{path}: sha256 {actual} does not match the expected {' or '.join(accepted)}"
            f"{f' ({what})' if what else ''}: it changed after it was acquired. If it is a copy an"
            " acquire rule made, delete it and run the workflow again (the rule fetches a verified"
            " copy); otherwise restore it from its source."
        )
    return actual


def sha256_record_path(path: str | Path) -> Path:
    """Where the digest of ``path`` is recorded: ``<name>.sha256`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def record_sha256(path: str | Path, digest: str) -> None:
    """Write ``digest`` beside ``path`` in sha256sum's format (``sha256sum -c`` can check it)."""
    with atomic_path(sha256_record_path(path)) as tmp:
        tmp.write_text(f"{digest}  {Path(path).name}\n")


def recorded_sha256(path: str | Path) -> str | None:
    """The digest recorded beside ``path`` by record_sha256, or None when there is none."""
    record = sha256_record_path(path)
    if not record.is_file():
        return None
    fields = record.read_text().split()
    if not fields or len(fields[0]) != 64 or any(c not in "0123456789abcdef" for c in fields[0]):
        raise ChecksumError(f"{record}: not a sha256 record ('<64 hex digits>  <file name>')")
    return fields[0]


def _read_decompressed(path: Path) -> tuple[bytes, bool]:
    """The file's bytes as a table reader sees them (gzip decompressed), and whether it was gzip."""
    with open(path, "rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if compressed else open(path, "rb") as handle:
        return handle.read(), compressed


def describe_non_utf8(path: str | Path) -> str:
    """Where the first byte that is not UTF-8 lies: file, line, column, offset and the line's text.

    Reads the file whole: called only once a reader has failed, on tables of a few megabytes.
    """
    data, compressed = _read_decompressed(Path(path))
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        offset = error.start
        line_start = data.rfind(b"\n", 0, offset) + 1
        line_end = data.find(b"\n", offset)
        text = data[line_start : None if line_end < 0 else line_end]
        line = data.count(b"\n", 0, offset) + 1
        where = "of the decompressed text" if compressed else "in the file"
        return (
            f"{path}, line {line}, column {offset - line_start + 1} "
            f"(byte offset {offset} {where}): byte 0x{data[offset]:02x} is not UTF-8 "
            f"({error.reason}); the line's bytes: {text!r}"
        )
    return f"{path}: not UTF-8"  # the reader failed yet the bytes decode: still name the file


def read_csv_utf8(path: str | Path, **options: Any):
    """``pandas.read_csv`` of a UTF-8 table; a byte that is not UTF-8 raises EncodingError naming
    the file and position (pandas' own error names neither the file nor a line)."""
    import pandas as pd

    try:
        return pd.read_csv(path, encoding="utf-8", encoding_errors="strict", **options)
    except UnicodeDecodeError:
        raise EncodingError(describe_non_utf8(path)) from None


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
