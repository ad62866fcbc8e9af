"""Published checkpoints: boto3 against a real local S3 server (moto), resume, verification."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest
import torch

from rbio.evaluation.published import (
    MANIFEST,
    PARTIAL_DIR,
    PublishedCheckpointError,
    download_checkpoint,
    list_checkpoint,
    load_checkpoint_into,
    s3_client,
)
from rbio.io import ChecksumError
from rbio.models import load_model_and_tokenizer

BUCKET = "czi-rbio"
VARIANT = "rbio1-EXP"
# Like the real bucket: anyone may read, so unsigned requests work.
PUBLIC = {"ACL": "public-read"}


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
    """A 'trained' tiny model (perturbed weights) saved as shards and uploaded to the bucket."""
    model, _ = load_model_and_tokenizer(tiny_model_dir)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01)
    local = tmp_path_factory.mktemp("ckpt") / VARIANT
    model.save_pretrained(local, max_shard_size="100KB", safe_serialization=True)
    assert len(list(local.glob("*.safetensors"))) > 1
    admin.create_bucket(Bucket=BUCKET)
    for path in local.iterdir():
        admin.upload_file(str(path), BUCKET, f"{VARIANT}/{path.name}", ExtraArgs=PUBLIC)
    # A large object uploaded in 5 MiB parts: its ETag is the multipart form "<md5>-2".
    from boto3.s3.transfer import TransferConfig

    big = local.parent / "extra.bin"
    big.write_bytes(os.urandom(6 << 20))
    multipart = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
    admin.upload_file(
        str(big), BUCKET, f"{VARIANT}/extra/blob.bin", Config=multipart, ExtraArgs=PUBLIC
    )
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
    assert (dest / "extra" / "blob.bin").stat().st_size == 6 << 20
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
    key = f"{VARIANT}/extra/blob.bin"
    flaky = _FlakyClient(s3_client(endpoint_url=s3_endpoint), key, limit=3 << 20)
    dest = tmp_path / VARIANT
    with pytest.raises(ConnectionError):
        download_checkpoint(VARIANT, dest, bucket=BUCKET, client=flaky, progress=False)
    assert not (dest / "extra" / "blob.bin").exists(), "half-written file under the final name"
    assert not (dest / MANIFEST).exists()
    partial = dest / PARTIAL_DIR / "extra" / "blob.bin.part"
    assert partial.stat().st_size == 3 << 20
    download_checkpoint(VARIANT, dest, bucket=BUCKET, client=flaky, progress=False)
    assert flaky.ranges == [None, f"bytes={3 << 20}-"]
    assert (dest / "extra" / "blob.bin").read_bytes() == (
        published_checkpoint.parent / "extra.bin"
    ).read_bytes()
    assert (dest / MANIFEST).is_file() and not (dest / PARTIAL_DIR).exists()


def test_corrupt_partial_file_is_caught_and_removed(published_checkpoint, s3_endpoint, tmp_path):
    dest = tmp_path / VARIANT
    partial = dest / PARTIAL_DIR / "extra" / "blob.bin.part"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"\0" * (1 << 20))  # wrong bytes: resuming after them cannot verify
    with pytest.raises(ChecksumError, match="blob.bin"):
        download_checkpoint(
            VARIANT, dest, bucket=BUCKET, client=s3_client(endpoint_url=s3_endpoint), progress=False
        )
    assert not partial.exists() and not (dest / "extra" / "blob.bin").exists()


def test_missing_variant_and_missing_bucket_are_clear_errors(published_checkpoint, s3_endpoint):
    client = s3_client(endpoint_url=s3_endpoint)
    with pytest.raises(
        PublishedCheckpointError, match="no published checkpoint 'rbio1-NOPE'.*rbio1-EXP"
    ):
        list_checkpoint(client, "NOPE", bucket=BUCKET)
    with pytest.raises(PublishedCheckpointError, match="bucket 'no-such-bucket' does not exist"):
        list_checkpoint(client, VARIANT, bucket="no-such-bucket")


def test_checkpoint_for_another_model_is_rejected(tiny_model_dir, tmp_path):
    from safetensors.torch import save_file

    save_file({"other.weight": torch.zeros(2)}, tmp_path / "model.safetensors")
    model, _ = load_model_and_tokenizer(tiny_model_dir)
    with pytest.raises(PublishedCheckpointError, match="none of its 1 weights"):
        load_checkpoint_into(model, tmp_path)
