"""GRPO jobs on the tiny model: outputs, MLflow, resume after a kill, fault tolerance, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rbio.models import ModelPathError
from rbio.training.checkpoints import COMPLETE_MARKER
from rbio.training.grpo import (
    GrpoJob,
    RewardConfigError,
    resolve_rewards,
    train_grpo,
    training_run_tags,
)
from rbio.training.mixture import PromptDatasetError
from rbio.training.safe_rewards import RewardFailureError
from tests.helpers import REPO
from tests.training.conftest import grpo_job, stand_in_rewards, tiny_config


def make_job(tmp_path: Path, base: Path, prompts: Path, cfg=None, **overrides) -> GrpoJob:
    return grpo_job(cfg or tiny_config(max_steps=2), base, prompts, tmp_path, **overrides)


def mlflow_runs(uri: str):
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=["rbio"])


def test_go_variants_runs_are_tagged_with_the_go_composition(tmp_path):
    cfg = tiny_config()
    go = training_run_tags(grpo_job(cfg, tmp_path, tmp_path, tmp_path, variant="TF+GO+MLP"))
    assert go["go_composition"] == "answer_ema"  # config.yaml's
    assert "go_composition" not in training_run_tags(grpo_job(cfg, tmp_path, tmp_path, tmp_path))


def test_job_writes_model_summary_and_one_tagged_mlflow_run(
    tmp_path, tiny_model_dir, exp_prompts, validation_rows
):
    from safetensors.torch import load_file

    cfg = tiny_config(max_steps=4, save_steps=2, logging_steps=2, heldout_every_steps=3)
    job = make_job(tmp_path, tiny_model_dir, exp_prompts, cfg, validation=str(validation_rows))
    summary = train_grpo(job, reward_factory=stand_in_rewards)

    out = Path(job.out_dir)
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
                 "trainer_state.json", "training_summary.json", "run.json"):  # fmt: skip
        assert (out / name).is_file(), name
    assert not (out / "training_args.bin").exists(), "no pickles in the model folder"
    assert summary["steps"] == 4 and [p["step"] for p in summary["reward_curve"]] == [2, 4]
    assert {"rewards/format/mean", "rewards/answer/std", "frac_reward_zero_std"} <= set(
        summary["reward_curve"][0]
    )
    # Held-out answers before the first step, every 3 steps and at the last.
    assert [p["step"] for p in summary["heldout_curve"]] == [0, 3, 4]
    for point in summary["heldout_curve"]:
        assert 0 <= point["heldout/accuracy"] <= 1 and 0 <= point["heldout/unparseable"] <= 1
        assert 0 <= point["heldout/auroc"] <= 1

    before, after = (
        load_file(tiny_model_dir / "model.safetensors"),
        load_file(out / "model.safetensors"),
    )
    assert any(not (before[k] == after[k]).all() for k in before), "training changed no weight"

    runs = mlflow_runs(os.environ["MLFLOW_TRACKING_URI"])
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["run_id"] == json.loads((out / "run.json").read_text())["run_id"]
    assert run["status"] == "FINISHED"
    assert (run["tags.variant"], run["tags.split"], run["tags.seed"], run["tags.stage"]) == (
        "EXP", "loco_k562", str(cfg.seed), "train")  # fmt: skip
    assert run["tags.provenance_digest"] == "test-digest"
    for metric in ("rewards/mention/mean", "frac_reward_zero_std", "completions/mean_length",
                   "reward_failures/answer", "reward_failures_total", "heldout/accuracy"):  # fmt: skip
        assert f"metrics.{metric}" in runs.columns, metric
    # What tells variants apart in MLflow's compare view, and the job's settings as an artifact.
    expected = {"variant": "EXP", "base_model": cfg.model_base, "source/exp/weight": "1.0",
                "source/exp/prompts_used": str(summary["training_set"]["rows"]),
                "reward/format/weight": "1.0", "reward/answer/weight": "2.0"}  # fmt: skip
    assert {k: run[f"params.{k}"] for k in expected} == expected
    import mlflow
    import yaml

    resolved = yaml.safe_load(
        mlflow.artifacts.load_text(f"runs:/{run['run_id']}/resolved_config.yaml")
    )
    assert resolved["grpo"]["max_steps"] == 4 and resolved["variant"]["name"] == "EXP"
    experiment = mlflow.get_experiment(run["experiment_id"])
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    store = Path(os.environ["MLFLOW_TRACKING_URI"].removeprefix("sqlite:///")).parent
    assert (
        Path(experiment.artifact_location.removeprefix("file://"))
        == (store / "artifacts").resolve()
    )


RUNNER = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from transformers import TrainerCallback
from rbio.training.grpo import GrpoJob, train_grpo
from tests.training.conftest import stand_in_rewards

class StepFile(TrainerCallback):  # lets the test see how far training got
    def on_step_end(self, args, state, control, **kwargs):
        Path(sys.argv[2]).write_text(str(state.global_step))

train_grpo(GrpoJob.from_json(sys.argv[1]), reward_factory=stand_in_rewards, callbacks=[StepFile()])
"""


def start_runner(tmp_path: Path, job: GrpoJob) -> tuple[subprocess.Popen, Path]:
    """The job in a subprocess of its own (signals, kills); returns it and its step file."""
    spec, runner, steps = tmp_path / "job.json", tmp_path / "runner.py", tmp_path / "step"
    job.to_json(spec)
    runner.write_text(RUNNER.format(repo=str(REPO)))
    command = [sys.executable, str(runner), str(spec), str(steps)]
    return subprocess.Popen(command, cwd=REPO, env=os.environ.copy()), steps


def wait_for(path: Path, process: subprocess.Popen, seconds: float = 240, step: int = 0) -> None:
    """Until ``path`` exists (and, a step file, holds at least ``step``) or the process ended."""

    def reached() -> bool:
        return path.is_file() and (not step or int(path.read_text() or 0) >= step)

    deadline = time.monotonic() + seconds
    while not reached() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.slow
def test_killed_job_resumes_from_its_last_checkpoint(tmp_path, tiny_model_dir, exp_prompts):
    import mlflow

    cfg = tiny_config(max_steps=20, save_steps=5, logging_steps=1)
    job = make_job(tmp_path, tiny_model_dir, exp_prompts, cfg)
    process, steps = start_runner(tmp_path, job)
    state = Path(job.checkpoint_dir) / "checkpoint-5" / COMPLETE_MARKER
    wait_for(state, process)
    wait_for(steps, process, step=7)  # steps 6 and 7 are logged but in no checkpoint
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert state.is_file(), "the job never wrote its first checkpoint"
    assert not (Path(job.out_dir) / "config.json").exists(), "killed job must not look finished"
    killed_at = max(
        int(p.name.split("-")[1]) for p in Path(job.checkpoint_dir).glob("checkpoint-*")
    )
    assert killed_at < 20

    summary = train_grpo(job, reward_factory=stand_in_rewards)
    assert summary["resumed_from_step"] is not None and summary["resumed_from_step"] >= 5
    assert summary["steps"] == 20
    state_after = json.loads((Path(job.out_dir) / "trainer_state.json").read_text())
    assert state_after["global_step"] == 20
    runs = mlflow_runs(os.environ["MLFLOW_TRACKING_URI"])
    assert len(runs) == 1, "the resumed job continues the same MLflow run"
    assert runs.iloc[0]["status"] == "FINISHED"
    history = mlflow.MlflowClient().get_metric_history(runs.iloc[0]["run_id"], "reward")
    assert sorted(p.step for p in history) == list(range(1, 21)), "replayed steps logged once"


@pytest.mark.slow
def test_sigterm_saves_the_current_step_marks_the_run_killed_and_the_rerun_resumes(
    tmp_path, tiny_model_dir, exp_prompts
):
    # No periodic checkpoint before the end: whatever is saved, the signal saved it.
    cfg = tiny_config(max_steps=30, save_steps=1000, logging_steps=1)
    job = make_job(tmp_path, tiny_model_dir, exp_prompts, cfg)
    process, steps = start_runner(tmp_path, job)
    wait_for(steps, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=240) == 128 + signal.SIGTERM, "non-zero: Snakemake retries"
    stopped_at = int(steps.read_text())
    assert 1 <= stopped_at < 30
    checkpoint = Path(job.checkpoint_dir) / f"checkpoint-{stopped_at}"
    assert (checkpoint / COMPLETE_MARKER).is_file(), "the step it stopped at is saved, whole"
    assert not (Path(job.out_dir) / "config.json").exists()
    runs = mlflow_runs(os.environ["MLFLOW_TRACKING_URI"])
    assert runs.iloc[0]["status"] == "KILLED"

    summary = train_grpo(job, reward_factory=stand_in_rewards)
    assert (summary["resumed_from_step"], summary["steps"]) == (stopped_at, 30)
    runs = mlflow_runs(os.environ["MLFLOW_TRACKING_URI"])
    assert len(runs) == 1 and runs.iloc[0]["status"] == "FINISHED"
    assert not list(Path(job.checkpoint_dir).glob("checkpoint-*")), "removed after the model"


def test_resuming_from_the_last_step_trains_no_further(tmp_path, tiny_model_dir, exp_prompts):
    from transformers import TrainerCallback

    class CrashAfterTraining(TrainerCallback):  # a kill between the last save and the model
        def on_train_end(self, args, state, control, **kwargs):
            raise RuntimeError("killed")

    # 3 steps: not a multiple of the 4 steps of an epoch of the 4 prompts, where the Trainer
    # used to train a 4th step when resumed from checkpoint-3.
    cfg = tiny_config(max_steps=3, save_steps=3, logging_steps=1)
    job = make_job(tmp_path, tiny_model_dir, exp_prompts, cfg)
    with pytest.raises(RuntimeError, match="killed"):
        train_grpo(job, reward_factory=stand_in_rewards, callbacks=[CrashAfterTraining()])
    assert (Path(job.checkpoint_dir) / "checkpoint-3" / COMPLETE_MARKER).is_file()
    summary = train_grpo(job, reward_factory=stand_in_rewards)
    assert (summary["resumed_from_step"], summary["steps"]) == (3, 3)
    state = json.loads((Path(job.out_dir) / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert (Path(job.out_dir) / "config.json").is_file()
    assert not list(Path(job.checkpoint_dir).glob("checkpoint-*"))


def test_systematically_failing_reward_stops_the_run(tmp_path, tiny_model_dir, exp_prompts):
    def answer(completions, **kwargs):
        raise KeyError("gene missing from the verifier table")

    def factory(variant, model=None, tokenizer=None):
        funcs, weights = stand_in_rewards(variant)
        return [f if f.__name__ != "answer" else answer for f in funcs], weights

    cfg = tiny_config(max_steps=4, save_steps=4, logging_steps=2)
    job = make_job(tmp_path, tiny_model_dir, exp_prompts, cfg)
    with pytest.raises(RewardFailureError, match="reward 'answer' failed on 8 of 8 completions"):
        train_grpo(job, reward_factory=factory)
    assert mlflow_runs(os.environ["MLFLOW_TRACKING_URI"]).iloc[0]["status"] == "FAILED"


def test_clear_errors_for_bad_inputs(tmp_path, tiny_model_dir, exp_prompts):
    with pytest.raises(ModelPathError, match="nowhere.*prepare_base_model"):
        train_grpo(
            make_job(tmp_path, tmp_path / "nowhere", exp_prompts),
            reward_factory=stand_in_rewards,
        )
    with pytest.raises(PromptDatasetError, match="prompts/tf.*build_prompts"):
        train_grpo(
            make_job(tmp_path, tiny_model_dir, tmp_path / "prompts" / "tf"),
            reward_factory=stand_in_rewards,
        )
    with pytest.raises(FileNotFoundError, match=r"source\(s\) \['exp'\]"):
        train_grpo(make_job(tmp_path, tiny_model_dir, exp_prompts, prompt_dirs={}))


def test_job_round_trips_through_json_with_its_types(tmp_path, tiny_model_dir, exp_prompts):
    job = make_job(tmp_path, tiny_model_dir, exp_prompts, tiny_config(max_steps=3))
    job.to_json(tmp_path / "job.json")
    assert GrpoJob.from_json(tmp_path / "job.json") == job


def test_mlp_runs_log_the_confidence_mapping_their_prompts_used(tmp_path, monkeypatch):
    import mlflow
    import torch
    from safetensors.torch import save_file

    from rbio.data.prompts import SETTINGS_KEY, SUMMARY_FILE
    from rbio.io import write_json
    from rbio.training.checkpoints import mark_complete
    from rbio.training.grpo import open_mlflow_run, prompt_settings_params, training_fingerprint

    def prompts_built_with(mlp_confidence: str) -> dict[str, str]:
        folders = {}
        for source in ("tf", "go", "mlp", "exp"):
            folder = tmp_path / mlp_confidence / source
            folder.mkdir(parents=True)
            summary = {"source": source}
            if source == "mlp":  # as rbio.data.stages.prompts writes it
                summary[SETTINGS_KEY] = {"mlp_confidence": mlp_confidence}
            write_json(folder / SUMMARY_FILE, summary)
            folders[source] = str(folder)
        return folders

    # open_mlflow_run points the Trainer at its run through the environment: undone afterwards.
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "HF_MLFLOW_LOG_ARTIFACTS"):
        monkeypatch.setenv(name, "")
    cfg, base = tiny_config(), tmp_path / "base"
    raw = grpo_job(cfg, base, base, tmp_path, "TF+GO+MLP", prompt_dirs=prompts_built_with("raw"))
    assert prompt_settings_params(raw) == {"mlp_confidence": "raw"}
    # The store this test's environment names (another test may have set a global URI).
    client = mlflow.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    run = client.get_run(open_mlflow_run(raw))
    assert run.data.params == {"mlp_confidence": "raw"}
    # A job resuming from a (complete) checkpoint reuses its run and logs the same value again.
    checkpoint = Path(raw.checkpoint_dir) / "checkpoint-1"
    checkpoint.mkdir(parents=True)
    save_file({"weight": torch.zeros(1)}, str(checkpoint / "model.safetensors"))
    write_json(checkpoint / "trainer_state.json", {"global_step": 1})
    mark_complete(checkpoint, 1)
    assert open_mlflow_run(raw) == run.info.run_id

    centred = grpo_job(
        cfg, base, base, tmp_path, "TF+GO+MLP", prompt_dirs=prompts_built_with("threshold_centred")
    )
    assert training_fingerprint(centred) != training_fingerprint(raw)
    exp = grpo_job(cfg, base, base, tmp_path, "EXP", prompt_dirs=prompts_built_with("x"))
    assert prompt_settings_params(exp) == {}


def test_variant_naming_a_reward_the_registry_did_not_build(tmp_path):
    variant = tiny_config().variants["EXP"]
    funcs, _ = stand_in_rewards(variant)
    with pytest.raises(RewardConfigError, match=r"names reward\(s\) \['answer'\]"):
        resolve_rewards(variant, funcs[:2], [1.0, 1.0])


def test_real_registry_builds_every_configured_variant():
    from rbio.rewards.registry import build_reward_functions

    cfg = tiny_config()
    for name, variant in cfg.variants.items():
        if "go_likelihood" in variant.rewards:
            continue
        funcs, weights = resolve_rewards(variant, *build_reward_functions(variant))
        assert len(funcs) == len(weights) == len(variant.rewards), name


def test_config_grpo_keys_are_trl_arguments_or_the_pipelines_own():
    import dataclasses

    import yaml
    from trl import GRPOConfig

    from rbio.config import GRPO_PIPELINE_KEYS

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    keys = set(schema["properties"]["grpo"]["properties"])
    assert set(GRPO_PIPELINE_KEYS) <= keys
    trl_fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    assert keys - set(GRPO_PIPELINE_KEYS) <= trl_fields
    assert not set(GRPO_PIPELINE_KEYS) & trl_fields  # else TRL would not receive them


def _open_run_after(barrier, job, uri: str, results) -> None:
    from rbio.training.grpo import open_mlflow_run

    os.environ["MLFLOW_TRACKING_URI"] = uri
    barrier.wait()
    try:
        results.put(("ok", open_mlflow_run(job)))
    except Exception as error:  # reported to the test, which names it
        results.put(("failed", repr(error)))


def test_parallel_jobs_create_a_fresh_store_without_racing(tmp_path):
    # Two jobs that open a fresh sqlite store at once raced in MLflow's schema migration
    # ("Online migration expected to match one row"): a 2-core tiny run hit it.
    import multiprocessing

    context = multiprocessing.get_context("fork")
    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    cfg, base = tiny_config(), tmp_path / "base"
    jobs = [
        grpo_job(cfg, base, base, tmp_path / str(n), prompt_dirs={}, split="loco_k562")
        for n in range(4)
    ]
    barrier, results = context.Barrier(len(jobs)), context.Queue()
    workers = [
        context.Process(target=_open_run_after, args=(barrier, job, uri, results)) for job in jobs
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert [status for status, _ in outcomes] == ["ok"] * len(jobs), outcomes
    assert len({run_id for _, run_id in outcomes}) == len(jobs)
