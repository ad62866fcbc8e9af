"""Checking a raw config mapping against the JSON schema, with one short message per problem.

Snakemake's own ``validate`` prints the whole schema and the whole config (hundreds of lines) for
one misspelt key; the workflow and :func:`rbio.config_file.read_config` both call
:func:`validate_config` instead, so both fail with the same one-line :class:`ConfigError`: the key
path, the problem, and for an unknown key the valid key it most likely meant.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from rbio.config import ConfigError

# A schema message can quote a whole config section; cut it so that the error stays one line.
MAX_PROBLEM_CHARS = 200


def validate_config(raw: Mapping[str, Any], schema: str | Path | Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` for the first problem of ``raw``: a NaN or infinite number
    anywhere, then what the JSON schema (a path or the loaded document) rejects."""
    for key, value in _non_finite_numbers(raw):
        raise ConfigError(f"config key '{key}': {value} is not a finite number")
    if not isinstance(schema, Mapping):
        with open(schema) as handle:
            schema = yaml.safe_load(handle)
    validator_class = jsonschema.validators.validator_for(schema)
    error = jsonschema.exceptions.best_match(validator_class(schema).iter_errors(raw))
    if error is not None:
        raise ConfigError(schema_error_message(error)) from None


def _non_finite_numbers(node: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """(key path, value) of every NaN or ±inf: YAML's .nan and .inf pass JSON-schema bounds (every
    comparison with NaN is false, and inf exceeds any minimum)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _non_finite_numbers(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _non_finite_numbers(value, f"{path}[{index}]")
    elif isinstance(node, float) and not math.isfinite(node):
        yield path or "<root>", node


def schema_error_message(error: jsonschema.ValidationError) -> str:
    """One line for a schema violation: ``config key 'a.b': problem``."""
    parent = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "additionalProperties" and error.validator_value is False:
        valid = list(error.schema.get("properties", {}))
        unknown = [key for key in error.instance if key not in valid]
        return "; ".join(_unknown_key_message(parent, key, valid) for key in unknown)
    problem = error.message
    if len(problem) > MAX_PROBLEM_CHARS:
        problem = problem[:MAX_PROBLEM_CHARS] + " ..."
    return f"config key '{parent or '<root>'}': {problem}"


def _unknown_key_message(parent: str, key: str, valid: list[str]) -> str:
    prefix = f"{parent}." if parent else ""
    message = f"config key '{prefix}{key}': unknown key"
    close = difflib.get_close_matches(str(key), valid, n=1)
    if close:
        return f"{message}; did you mean '{prefix}{close[0]}'?"
    return f"{message}; valid keys here: {', '.join(sorted(valid))}"
