"""Guard rails the workflow applies while it parses: one short line, before any job runs."""

import pytest

from tests.helpers import run_workflow


def failure_output(tmp_path, *args, **kwargs) -> str:
    result = run_workflow(tmp_path, *args, check=False, **kwargs)
    assert result.returncode != 0
    return result.stdout + result.stderr


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        ({"seeed": 1}, "config key 'seeed': unknown key; did you mean 'seed'?"),
        (
            {"grpo": {"learning_rat": 1e-6}},
            "config key 'grpo.learning_rat': unknown key; did you mean 'grpo.learning_rate'?",
        ),
    ],
)
def test_unknown_config_keys_fail_in_a_few_lines(tmp_path, overlay, message):
    output = failure_output(tmp_path, "data", "-n", extra_config=overlay)
    assert message in output
    assert len(output.strip().splitlines()) <= 5, output
