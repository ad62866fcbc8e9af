"""The shared MLflow tracking server of a cluster: ``rbio tracking-server``.

One ``mlflow server`` with its runs in a database server (PostgreSQL) and its artifacts in an S3
bucket, proxied by the server (``--serve-artifacts``): jobs talk HTTP to it only, so they need
neither database nor S3 credentials. A sqlite file is not for dozens of jobs on a network file
system (MLflow's docs say so), hence a database URI is required here.

The store URIs reach ``mlflow server`` through its own environment variables, not its command
line, so their credentials show in no process list and no log; what is printed goes through
:func:`rbio.tracking.public_uri`.
"""

from __future__ import annotations

import socket
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rbio.config import ConfigError
from rbio.tracking import public_uri

# mlflow server's own variables (its --backend-store-uri, --artifacts-destination, --allowed-hosts).
BACKEND_ENV = "MLFLOW_BACKEND_STORE_URI"
ARTIFACTS_ENV = "MLFLOW_ARTIFACTS_DESTINATION"
ALLOWED_HOSTS_ENV = "MLFLOW_SERVER_ALLOWED_HOSTS"
JOB_EXECUTION_ENV = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"
DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")
DEFAULT_PORT = 5000


@dataclass(frozen=True)
class ServerSettings:
    backend_store_uri: str  # postgresql://user:password@host:5432/mlflow
    artifacts_destination: str  # s3://bucket/prefix
    host: str = "0.0.0.0"  # every interface: jobs on other nodes reach it
    port: int = DEFAULT_PORT
    workers: int = 4

    def check(self) -> None:
        scheme = urllib.parse.urlsplit(self.backend_store_uri).scheme.split("+")[0]
        if scheme not in DATABASE_SCHEMES:
            raise ConfigError(
                f"backend store {public_uri(self.backend_store_uri)!r} is not a database server "
                f"({', '.join(DATABASE_SCHEMES)}): many jobs at once need one, e.g. "
                "postgresql://USER:PASSWORD@HOST:5432/mlflow"
            )
        if not self.artifacts_destination:
            raise ConfigError("no artifact destination: give an S3 URI such as s3://BUCKET/mlflow")


def tracking_uri(settings: ServerSettings) -> str:
    """The ``MLFLOW_TRACKING_URI`` jobs on other nodes use: this host's name when the server
    listens on every interface."""
    host = socket.getfqdn() if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://{host}:{settings.port}"


def allowed_hosts(settings: ServerSettings) -> str:
    """Host headers the server accepts: MLflow's default (localhost, private addresses) plus this
    host's names, which jobs on other nodes use (MLflow answers 403 to any other name)."""
    from mlflow.server.security_utils import get_default_allowed_hosts

    names = {
        socket.gethostname(),
        socket.getfqdn(),
        urllib.parse.urlsplit(tracking_uri(settings)).hostname,
    }
    ours = [pattern for name in sorted(n for n in names if n) for pattern in (name, f"{name}:*")]
    return ",".join([*get_default_allowed_hosts(), *ours])


def server_command(
    settings: ServerSettings, environ: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of ``mlflow server`` for these settings; the store URIs are in the
    environment only. A site's own ``MLFLOW_SERVER_ALLOWED_HOSTS`` wins."""
    settings.check()
    env = {
        **environ,
        BACKEND_ENV: settings.backend_store_uri,
        ARTIFACTS_ENV: settings.artifacts_destination,
    }
    env.setdefault(ALLOWED_HOSTS_ENV, allowed_hosts(settings))
    # MLflow's job runner (a huey consumer process: GenAI scorers, trace rollups) serves nothing
    # this pipeline logs; off, the server starts faster and holds fewer processes.
    env.setdefault(JOB_EXECUTION_ENV, "false")
    argv = [
        str(Path(sys.executable).with_name("mlflow")), "server",
        "--host", settings.host,
        "--port", str(settings.port),
        "--workers", str(settings.workers),
        "--serve-artifacts",
    ]  # fmt: skip
    return argv, env
