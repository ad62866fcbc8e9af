"""Published checkpoints: boto3 against a real local S3 server (moto): what is downloaded,
resume, verification, unsafe keys, strict loading."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import boto3
import pytest
import torch
from safetensors.torch import load_file, save_file

from rbio.evaluation.published import (
    MANIFEST,
    PARTIAL_DIR,
    CheckpointMismatchError,
    PublishedCheckpointError,
    UnsafeKeyError,
    checkpoint_path,
    download_checkpoint,
    list_checkpoint,
    load_checkpoint_into,
    s3_client,
)
from rbio.io import ChecksumError
from rbio.models import load_model_and_tokenizer

BUCKET = "czi-rbio"
VARIANT = "rbio1-EXP"
INDEX = "model.safetensors.index.json"
BIG_TEXT = "extra/big.txt"  # needed (*.txt) and uploaded in parts: a multipart ETag
NOT_NEEDED = ("optimizer.pt", "extra/blob.bin")  # what loading does not read
# Like the real bucket: anyone may read, so unsigned requests work.
PUBLIC = {"ACL": "public-read"}


def _upload(admin, folder: Path, variant: str) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            key = f"{variant}/{path.relative_to(folder).as_posix()}"
            admin.upload_file(str(path), BUCKET, key, ExtraArgs=PUBLIC)


def _edited_copy(source: Path, dest: Path, add: dict | None = None, drop: str | None = None):
    """A copy of a sharded checkpoint with a weight added to (and listed in the index of) the
    first shard, and/or one weight removed from its shard and the index."""
    shutil.copytree(source, dest)
    index = json.loads((dest / INDEX).read_text())
    first = sorted(set(index["weight_map"].values()))[0]
    if drop is not None:
        shard = index["weight_map"].pop(drop)
        tensors = load_file(dest / shard)
        del tensors[drop]
        save_file(tensors, dest / shard, metadata={"format": "pt"})
    for name, tensor in (add or {}).items():
        tensors = load_file(dest / first)
        tensors[name] = tensor
        save_file(tensors, dest / first, metadata={"format": "pt"})
        index["weight_map"][name] = first
    (dest / INDEX).write_text(json.dumps(index))
    return dest


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def admin(s3_endpoint):
    """A signed client (fake credentials) that fills the bucket, as the authors did."""
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def published_checkpoint(tiny_model_dir, admin, tmp_path_factory) -> Path:
    """A 'trained' tiny model (perturbed weights) saved as shards and uploaded to the bucket,
    with files loading does not need beside it."""
    model, _ = load_model_and_tokenizer(tiny_model_dir)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01)
    local = tmp_path_factory.mktemp("ckpt") / VARIANT
    model.save_pretrained(local, max_shard_size="100KB", safe_serialization=True)
    assert len(list(local.glob("*.safetensors"))) > 1
    admin.create_bucket(Bucket=BUCKET)
    _upload(admin, local, VARIANT)
    for key in NOT_NEEDED:
        admin.put_object(Bucket=BUCKET, Key=f"{VARIANT}/{key}", Body=b"\0" * 1000, **PUBLIC)
    # A large object uploaded in 5 MiB parts: its ETag is the multipart form "<md5>-2".
    from boto3.s3.transfer import TransferConfig

    big = local.parent / "big.txt"
    big.write_bytes(os.urandom(6 << 20))
    multipart = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
    admin.upload_file(str(big), BUCKET, f"{VARIANT}/{BIG_TEXT}", Config=multipart, ExtraArgs=PUBLIC)
    return local


def test_download_verifies_and_loads_like_the_authors(
    published_checkpoint, s3_endpoint, tiny_model_dir, tmp_path
):
    client = s3_client(endpoint_url=s3_endpoint)
    objects = list_checkpoint(client, "EXP", bucket=BUCKET)
    assert any(item.etag.endswith("-2") for item in objects)
    dest = download_checkpoint(
        "EXP", tmp_path / VARIANT, bucket=BUCKET, client=client, progress=False
    )
    assert (dest / MANIFEST).is_file() and not (dest / PARTIAL_DIR).exists()
    assert (dest / BIG_TEXT).stat().st_size == 6 << 20
    # Only what loading reads is downloaded; the manifest says what was left out.
    manifest = json.loads((dest / MANIFEST).read_text())
    assert all(not (dest / key).exists() for key in NOT_NEEDED)
    assert sorted(item["key"] for item in manifest["not_downloaded"]) == sorted(
        f"{VARIANT}/{key}" for key in NOT_NEEDED
    )
    on_disk = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert on_disk == sorted([MANIFEST, *(item["path"] for item in manifest["objects"])])
    assert all({"key", "size", "etag"} <= set(item) for item in manifest["objects"])
    model, _ = load_model_and_tokenizer(tiny_model_dir)
    report = load_checkpoint_into(model, dest)
    assert report["unexpected_keys"] == []
    expected, _ = load_model_and_tokenizer(published_checkpoint)
    for (name, got), (_, want) in zip(
        model.state_dict().items(), expected.state_dict().items(), strict=True
    ):
        assert torch.equal(got, want), name


class _FlakyBody:
    """A response body that breaks after ``limit`` bytes, like a dropped connection."""

    def __init__(self, body, limit):
        self.body, self.left = body, limit

    def read(self, size=-1):
        if self.left <= 0:
            raise ConnectionError("connection reset (simulated)")
        block = self.body.read(min(size, self.left) if size > 0 else self.left)
        self.left -= len(block)
        return block


class _FlakyClient:
    """Wraps a real client; the first GET of ``key`` is cut after ``limit`` bytes."""

    def __init__(self, client, key, limit):
        self.client, self.key, self.limit = client, key, limit
        self.ranges: list[str | None] = []

    def get_object(self, **request):
        response = self.client.get_object(**request)
        if request["Key"] == self.key:
            self.ranges.append(request.get("Range"))
            if len(self.ranges) == 1:
                response["Body"] = _FlakyBody(response["Body"], self.limit)
        return response

    def __getattr__(self, name):
        return getattr(self.client, name)


def test_interrupted_download_resumes_from_the_partial_file(
    published_checkpoint, s3_endpoint, tmp_path
):
    key = f"{VARIANT}/{BIG_TEXT}"
    flaky = _FlakyClient(s3_client(endpoint_url=s3_endpoint), key, limit=3 << 20)
    dest = tmp_path / VARIANT
    with pytest.raises(ConnectionError):
        download_checkpoint(VARIANT, dest, bucket=BUCKET, client=flaky, progress=False)
    assert not (dest / BIG_TEXT).exists(), "half-written file under the final name"
    assert not (dest / MANIFEST).exists()
    partial = dest / PARTIAL_DIR / f"{BIG_TEXT}.part"
    assert partial.stat().st_size == 3 << 20
    download_checkpoint(VARIANT, dest, bucket=BUCKET, client=flaky, progress=False)
    assert flaky.ranges == [None, f"bytes={3 << 20}-"]
    assert (dest / BIG_TEXT).read_bytes() == (published_checkpoint.parent / "big.txt").read_bytes()
    assert (dest / MANIFEST).is_file() and not (dest / PARTIAL_DIR).exists()


def test_corrupt_partial_file_is_caught_and_removed(published_checkpoint, s3_endpoint, tmp_path):
    dest = tmp_path / VARIANT
    partial = dest / PARTIAL_DIR / f"{BIG_TEXT}.part"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"\0" * (1 << 20))  # wrong bytes: resuming after them cannot verify
    with pytest.raises(ChecksumError, match="big.txt"):
        download_checkpoint(
            VARIANT, dest, bucket=BUCKET, client=s3_client(endpoint_url=s3_endpoint), progress=False
        )
    assert not partial.exists() and not (dest / BIG_TEXT).exists()


def test_missing_variant_and_missing_bucket_are_clear_errors(published_checkpoint, s3_endpoint):
    client = s3_client(endpoint_url=s3_endpoint)
    with pytest.raises(
        PublishedCheckpointError, match="no published checkpoint 'rbio1-NOPE'.*rbio1-EXP"
    ):
        list_checkpoint(client, "NOPE", bucket=BUCKET)
    with pytest.raises(PublishedCheckpointError, match="bucket 'no-such-bucket' does not exist"):
        list_checkpoint(client, VARIANT, bucket="no-such-bucket")


def test_checkpoint_for_another_model_is_rejected(tiny_model_dir, tmp_path):
    save_file({"other.weight": torch.zeros(2)}, tmp_path / "model.safetensors")
    model, _ = load_model_and_tokenizer(tiny_model_dir)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(
        CheckpointMismatchError, match="1 checkpoint weight.*: other.weight"
    ) as info:
        load_checkpoint_into(model, tmp_path)
    assert info.value.unexpected_keys == ["other.weight"]
    assert "model.embed_tokens.weight" in info.value.missing_keys
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_truncated_shard_in_the_bucket_fails_the_download(
    published_checkpoint, admin, s3_endpoint, tmp_path
):
    variant = "rbio1-MLP"
    local = shutil.copytree(published_checkpoint, tmp_path / "source")
    shard = sorted(local.glob("*.safetensors"))[1]
    shard.write_bytes(shard.read_bytes()[:-100])  # listed size and ETag agree with the cut
    _upload(admin, local, variant)
    dest = tmp_path / variant
    client = s3_client(endpoint_url=s3_endpoint)
    with pytest.raises(PublishedCheckpointError, match=rf"{shard.name} is truncated: .* promises"):
        download_checkpoint(variant, dest, bucket=BUCKET, client=client, progress=False)
    assert not (dest / MANIFEST).exists(), "completion marker for an incomplete checkpoint"


def test_extra_and_missing_weights_fail_loading_with_their_keys(
    published_checkpoint, admin, s3_endpoint, tiny_model_dir, tmp_path
):
    variant = "rbio1-TF"
    dropped = "model.layers.0.mlp.up_proj.weight"
    local = _edited_copy(
        published_checkpoint,
        tmp_path / "source",
        add={"value_head.weight": torch.zeros(1, 4)},
        drop=dropped,
    )
    _upload(admin, local, variant)
    client = s3_client(endpoint_url=s3_endpoint)
    dest = download_checkpoint(
        variant, tmp_path / variant, bucket=BUCKET, client=client, progress=False
    )
    model, _ = load_model_and_tokenizer(tiny_model_dir)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint_into(model, dest)
    assert info.value.missing_keys == [dropped]
    assert info.value.unexpected_keys == ["value_head.weight"]
    message = str(info.value)
    assert f"1 base-model weight(s) missing from the checkpoint: {dropped}" in message
    assert "1 checkpoint weight(s) the base model does not have: value_head.weight" in message
    # Nothing was loaded: the authors' strict=False would have loaded the rest silently.
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_shape_mismatch_fails_loading(published_checkpoint, tiny_model_dir, tmp_path):
    name = "model.norm.weight"
    local = _edited_copy(published_checkpoint, tmp_path / "ckpt", drop=name)
    local = _edited_copy(local, tmp_path / "ckpt2", add={name: torch.ones(3)})
    model, _ = load_model_and_tokenizer(tiny_model_dir)
    with pytest.raises(CheckpointMismatchError, match=r"model.norm.weight: \[3\] != \[") as info:
        load_checkpoint_into(model, local)
    assert info.value.missing_keys == info.value.unexpected_keys == []


def test_file_truncated_after_download_is_caught_and_repaired(
    published_checkpoint, s3_endpoint, tiny_model_dir, tmp_path
):
    client = s3_client(endpoint_url=s3_endpoint)
    dest = download_checkpoint(
        VARIANT, tmp_path / VARIANT, bucket=BUCKET, client=client, progress=False
    )
    shard = sorted(dest.glob("*.safetensors"))[0]
    shard.write_bytes(shard.read_bytes()[:1000])
    model, _ = load_model_and_tokenizer(tiny_model_dir)
    with pytest.raises(PublishedCheckpointError, match=rf"{shard.name}: 1000 bytes, the manifest"):
        load_checkpoint_into(model, dest)
    download_checkpoint(VARIANT, dest, bucket=BUCKET, client=client, progress=False)
    assert load_checkpoint_into(model, dest)["unexpected_keys"] == []


@pytest.mark.parametrize(
    "relative",
    ["../escape.json", "sub/../../escape.json", "/etc/passwd.json", "a//b.json", "./x.json",
     "..", "", "a\\..\\b.json", "x\0.json", MANIFEST, f"{PARTIAL_DIR}/x.json"],
)  # fmt: skip
def test_unsafe_relative_paths_are_refused(relative, tmp_path):
    with pytest.raises(UnsafeKeyError, match="does not resolve inside the checkpoint folder"):
        checkpoint_path(tmp_path, f"rbio1-GO/{relative}", "rbio1-GO/")


def test_symbolic_link_out_of_the_folder_is_refused(tmp_path):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert checkpoint_path(tmp_path / "ckpt", "v/sub/model.safetensors", "v/").name == (
        "model.safetensors"
    )
    with pytest.raises(UnsafeKeyError, match="symbolic link"):
        checkpoint_path(tmp_path / "ckpt", "v/link/config.json", "v/")


@pytest.mark.parametrize("bad_key", ["../escape.json", "/abs.json", "sub/../../escape.json"])
def test_keys_leading_out_of_the_folder_refuse_the_download(
    published_checkpoint, admin, s3_endpoint, tmp_path, bad_key
):
    variant = "rbio1-GO"
    admin.put_object(Bucket=BUCKET, Key=f"{variant}/config.json", Body=b"{}", **PUBLIC)
    admin.put_object(Bucket=BUCKET, Key=f"{variant}/{bad_key}", Body=b"{}", **PUBLIC)
    root = tmp_path / "root"
    dest = root / "published" / variant
    client = s3_client(endpoint_url=s3_endpoint)
    try:
        with pytest.raises(UnsafeKeyError, match=f"object key '{variant}/{bad_key}'"):
            download_checkpoint(variant, dest, bucket=BUCKET, client=client, progress=False)
    finally:
        admin.delete_object(Bucket=BUCKET, Key=f"{variant}/{bad_key}")
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == [], "nothing may be written when a key is refused"
