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
