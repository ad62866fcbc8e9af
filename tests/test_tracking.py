"""Tracking URIs as outputs and logs show them: never with credentials."""

import pytest

from rbio.tracking import REDACTED, public_uri


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("http://alice:s3cret@mlflow.example.org:5000", "http://mlflow.example.org:5000"),
        ("https://token@mlflow.example.org/", "https://mlflow.example.org/"),
        ("postgresql://mlflow:pw@db:5432/mlflow", "postgresql://db:5432/mlflow"),
        (
            "postgresql://db/mlflow?user=mlflow&password=pw&sslmode=require",
            f"postgresql://db/mlflow?user=mlflow&password={REDACTED}&sslmode=require",
        ),
        ("sqlite:///results/mlflow/mlflow.db", "sqlite:///results/mlflow/mlflow.db"),
        ("sqlite:////abs/path/mlflow.db", "sqlite:////abs/path/mlflow.db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("databricks", "databricks"),
        (None, None),
    ],
)
def test_public_uri_drops_credentials_and_keeps_everything_else(uri, shown):
    assert public_uri(uri) == shown
    assert "s3cret" not in str(public_uri(uri)) and ":pw" not in str(public_uri(uri))


def test_server_command_keeps_store_credentials_out_of_its_command_line():
    import socket

    from rbio.config import ConfigError
    from rbio.tracking_server import ServerSettings, server_command

    settings = ServerSettings("postgresql://mlflow:pw@db:5432/mlflow", "s3://bucket/mlflow")
    argv, env = server_command(settings, {"PATH": "/bin"})
    assert argv[1:] == [
        "server", "--host", "0.0.0.0", "--port", "5000", "--workers", "4", "--serve-artifacts"
    ]  # fmt: skip
    assert "pw" not in " ".join(argv)
    assert env["MLFLOW_BACKEND_STORE_URI"] == settings.backend_store_uri
    assert env["MLFLOW_ARTIFACTS_DESTINATION"] == "s3://bucket/mlflow"
    # Jobs on other nodes call it by this host's name: MLflow's default would answer 403.
    assert f"{socket.getfqdn()}:*" in env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    site = server_command(settings, {"MLFLOW_SERVER_ALLOWED_HOSTS": "mlflow.lab"})[1]
    assert site["MLFLOW_SERVER_ALLOWED_HOSTS"] == "mlflow.lab"
    with pytest.raises(ConfigError, match="not a database server"):
        server_command(ServerSettings("sqlite:///mlflow.db", "s3://b"), {})
