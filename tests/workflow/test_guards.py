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


RAW_COPIES = ("results/data/raw/perturbqa/k562-de.csv", "results/data/raw/hgnc_aliases.tsv.gz")


def test_a_missing_data_folder_fails_before_any_job(tmp_path):
    missing = tmp_path / "no_data"
    output = failure_output(tmp_path, *RAW_COPIES, env={"RBIO_DATA_DIR": str(missing)})
    assert f"data folder {missing} does not exist (data.origin local)" in output
    assert "data.local_dir or $RBIO_DATA_DIR" in output
    assert "Error in rule" not in output  # no job started


def test_a_file_missing_from_the_data_folder_is_named_before_any_job(tmp_path):
    partial = tmp_path / "data"
    (partial / "perturbqa").mkdir(parents=True)
    (partial / "perturbqa" / "k562-de.csv").write_text("pert,gene,label,split\n")
    output = failure_output(tmp_path, *RAW_COPIES, env={"RBIO_DATA_DIR": str(partial)})
    assert f"data folder {partial} lacks hgnc_aliases/hgnc_alias_to_approved.tsv.gz" in output
    assert "Error in rule" not in output


def test_vllm_server_mode_on_one_gpu_fails_while_the_workflow_parses(tmp_path):
    # The rule's own gpu=1 leaves no GPU for the server: found before any job is queued.
    overlay = {"grpo": {"use_vllm": True, "vllm_mode": "server"}}
    output = failure_output(tmp_path, "data", "-n", extra_config=overlay)
    assert "config key 'grpo': grpo.vllm_mode is 'server'" in output
    assert "needs at least 2 GPUs" in output and "but has 1" in output


def test_a_gpu_count_that_does_not_split_the_global_batch_fails_at_parse_time(tmp_path):
    # 8 prompts x 4 generations = 32 completions per step: 3 GPUs x 4 cannot split them, 2 can.
    overlay = {"grpo": {"global_prompts_per_step": 8}}

    def gpus(count: int) -> tuple[str, ...]:  # -n ends --set-resources' list of values
        return ("--set-resources", f"train_grpo:gpu={count}", "-n")

    output = failure_output(tmp_path, "data", extra_config=overlay, args=gpus(3))
    assert "config key 'grpo.global_prompts_per_step': 32 completions" in output
    assert "over 3 GPU(s)" in output
    assert len(output.strip().splitlines()) <= 5, output
    run_workflow(tmp_path, "data", extra_config=overlay, args=gpus(2))
