"""A real cluster tracking stack for tests: PostgreSQL (a throwaway cluster from the installed
``initdb``), an S3 server (moto) with a bucket, and ``mlflow server`` started exactly as
``rbio tracking-server`` starts it (``rbio.tracking_server.server_command``).

Outside CI a machine without PostgreSQL skips these tests with the reason; in CI (``CI=true``)
that is a failure, so a CI machine that lost its PostgreSQL cannot pass silently.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from rbio.tracking_server import ServerSettings, server_command

DB_USER = "mlflow"
BUCKET = "rbio-mlflow"
# moto accepts any key; these are what the server (not the jobs) uses for S3.
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class TrackingStack:
    uri: str  # what jobs use: http://127.0.0.1:PORT
    s3_endpoint: str
    bucket: str
    log: Path  # mlflow server's output


def postgres_bin() -> Path | None:
    """Folder of initdb/pg_ctl: on PATH, else Debian's postgresql package layout."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(debian[-1]).parent if debian else None


def require_postgres() -> Path:
    folder = postgres_bin()
    if folder is None:
        reason = "PostgreSQL's initdb is not installed (Debian: apt-get install postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs PostgreSQL for the tracking server tests: {reason}")
        pytest.skip(reason)
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check, what: str, process: subprocess.Popen | None = None, seconds=300.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        with contextlib.suppress(OSError, requests.RequestException):
            if check():
                return
        time.sleep(0.3)
    raise TimeoutError(f"{what} did not come up in {seconds:.0f} s")


def _as_owner(folder: Path) -> list[str]:
    """PostgreSQL refuses to run as root (CI's user): run it as the ``postgres`` account (the
    Debian package makes it) or ``nobody``, owning its own folder."""
    if os.geteuid() != 0:
        return []
    name = next(n for n in ("postgres", "nobody") if _user_exists(n))
    entry = pwd.getpwnam(name)
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return ["runuser", "-u", name, "--"]


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@contextlib.contextmanager
def postgres_database(folder: Path) -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free port with password authentication; yields the
    SQLAlchemy URI of its database ``mlflow`` (credentials included, as a site's would be)."""
    import psycopg2

    binaries = require_postgres()
    password, port = secrets.token_hex(8), free_port()
    (folder / "pwfile").write_text(password + "\n")
    owner = _as_owner(folder)
    data = folder / "data"
    subprocess.run(
        [*owner, str(binaries / "initdb"), "-D", str(data), "-U", DB_USER, "-E", "UTF8",
         f"--pwfile={folder / 'pwfile'}", "--auth=scram-sha-256"],
        check=True, capture_output=True,
    )  # fmt: skip
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    pg_ctl = [*owner, str(binaries / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*pg_ctl, "-o", options, "-l", str(folder / "postgres.log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        admin = psycopg2.connect(
            host="127.0.0.1", port=port, user=DB_USER, password=password, dbname="postgres"
        )
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("CREATE DATABASE mlflow")
        admin.close()
        yield f"postgresql://{DB_USER}:{password}@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True)


@contextlib.contextmanager
def _process(argv: list[str], log: Path, env: dict[str, str] | None = None):
    with open(log, "w") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # the server's workers too
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def s3_server(folder: Path) -> Iterator[str]:
    """moto's S3 server on a free port with the bucket :data:`BUCKET`; yields its endpoint."""
    import boto3

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = str(Path(sys.executable).with_name("moto_server"))
    with _process([moto, "-H", "127.0.0.1", "-p", str(port)], folder / "moto.log") as process:
        wait_until(lambda: requests.get(endpoint, timeout=2).ok, "moto server", process)
        boto3.client("s3", endpoint_url=endpoint, **_boto_keys()).create_bucket(Bucket=BUCKET)
        yield endpoint


def _boto_keys() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_ENV["AWS_DEFAULT_REGION"],
    }


@contextlib.contextmanager
def tracking_stack(folder: Path, workers: int = 1) -> Iterator[TrackingStack]:
    """PostgreSQL + moto S3 + ``mlflow server`` started by ``rbio.tracking_server``.

    One server process by default: with several, uvicorn restarts any worker that does not answer
    its health ping within 5 s, and on a loaded 2-core machine a worker still importing MLflow
    never does (measured: no answer in 300 s with 2 workers).
    """
    with postgres_database(folder) as database, s3_server(folder) as endpoint:
        settings = ServerSettings(
            backend_store_uri=database,
            artifacts_destination=f"s3://{BUCKET}/artifacts",
            host="127.0.0.1",
            port=free_port(),
            workers=workers,
        )
        env = {**os.environ, **S3_ENV, "MLFLOW_S3_ENDPOINT_URL": endpoint}
        argv, env = server_command(settings, env)
        uri = f"http://127.0.0.1:{settings.port}"
        log = folder / "mlflow-server.log"
        with _process(argv, log, env) as process:
            wait_until(
                lambda: requests.get(f"{uri}/health", timeout=2).ok, "mlflow server", process
            )
            yield TrackingStack(uri=uri, s3_endpoint=endpoint, bucket=BUCKET, log=log)


def s3_keys(stack: TrackingStack) -> list[str]:
    """Every object key in the artifact bucket."""
    import boto3

    client = boto3.client("s3", endpoint_url=stack.s3_endpoint, **_boto_keys())
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=stack.bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.fixture(scope="module")
def tracking_server() -> Iterator[TrackingStack]:
    folder = Path(tempfile.mkdtemp(prefix="rbio-tracking-"))
    try:
        with tracking_stack(folder) as stack:
            yield stack
    finally:
        shutil.rmtree(folder, ignore_errors=True)
