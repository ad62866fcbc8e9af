"""Learning-curve figures from fake training summaries (GRPO's reward_curve, SFT's loss_curve)."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pytest
from matplotlib.image import imread

from rbio.reporting.artefacts import FIGURE_FORMATS, learning_curve_figures
from rbio.reporting.figures import (
    GRPO_STARTS,
    NO_SFT,
    NO_WINDOW,
    NOT_ANSWERED,
    NOT_REWARDED,
    learning_curve_figure,
    log_learning_curves,
    write_learning_curves,
)


def grpo_summary(steps: int, window: int, rewards: dict[str, float]) -> dict:
    """Shaped like rbio.training.grpo.training_summary: a point per logging window."""
    curve = [
        {"step": step, "reward": 0.1 * i, "completions/mean_length": 40.0 + i,
         **{f"rewards/{name}/mean": 0.05 * i for name in rewards},
         **{f"rewards/{name}/std": 0.01 for name in rewards}}
        for i, step in enumerate(range(window, steps + 1, window), start=1)
    ]  # fmt: skip
    heldout = [{"step": step, "heldout/accuracy": 0.5 + 0.01 * step} for step in (0, steps)]
    return {"variant": "EXP", "split": "loco_k562", "steps": steps, "rewards": rewards,
            "reward_curve": curve, "heldout_curve": heldout}  # fmt: skip


SFT = {
    "steps": 6,
    "loss_curve": [{"step": s, "loss": 3.0 - 0.4 * s} for s in (2, 4, 6)],
    "heldout_curve": [{"step": s, "heldout/accuracy": 0.4 + 0.02 * s} for s in (0, 3, 6)],
}


def axes_by_title(fig) -> dict:
    return {ax.get_title(): ax for ax in fig.axes if ax.get_title()}


def start_lines(ax) -> list[float]:
    return [line.get_xdata()[0] for line in ax.get_lines() if line.get_label() == GRPO_STARTS]


def test_sft_then_grpo_on_one_step_axis():
    grpo = grpo_summary(10, 2, {"answer": 1.0, "mention": 0.5, "format": 1.0})
    fig = learning_curve_figure(grpo, SFT, "EXP, loco_k562")
    panels = axes_by_title(fig)
    assert list(panels) == [
        "total reward (weighted sum)",
        "answer reward (weight 1)",
        "mention reward (weight 0.5)",
        "format reward",
        "completion length",
        "SFT loss",
        "held-out answer accuracy",
    ]
    for ax in panels.values():
        assert ax.get_xlim() == (0, 6 + 10)  # SFT's 6 steps, then GRPO's 10
        assert start_lines(ax) == [6]  # GRPO starts after SFT
        assert ax.get_xlabel() == "step (SFT, then GRPO)" and ax.get_ylabel()
        assert not ax.texts  # every curve has points: no mark
    answer = panels["answer reward (weight 1)"].get_lines()[0]
    assert list(answer.get_xdata()) == [8, 10, 12, 14, 16]  # GRPO steps shifted by SFT's
    assert list(panels["SFT loss"].get_lines()[0].get_xdata()) == [2, 4, 6]
    # Held-out answers of both stages, each in its stage's colour, GRPO's after SFT's steps.
    sft_answers, grpo_answers = panels["held-out answer accuracy"].get_lines()[:2]
    assert list(sft_answers.get_xdata()) == [0, 3, 6]
    assert list(grpo_answers.get_xdata()) == [6, 16]
    assert sft_answers.get_color() != grpo_answers.get_color()
    assert panels["answer reward (weight 1)"].get_ylim() == (0.0, 1.0)
    assert panels["total reward (weighted sum)"].get_ylim() == (0.0, 2.5)  # sum of weights
    plt.close(fig)


def test_empty_curve_and_missing_stages_are_marked():
    grpo = grpo_summary(1, 2, {"answer": 1.0})  # 1 step, windows of 2: no point logged
    assert grpo["reward_curve"] == []
    grpo["heldout_curve"] = []  # heldout_every_steps 0
    fig = learning_curve_figure(grpo, None, "EXP, loco_k562")
    panels = axes_by_title(fig)
    marks = {title: [t.get_text() for t in ax.texts] for title, ax in panels.items()}
    assert marks["answer reward (weight 1)"] == [NO_WINDOW]
    assert marks["completion length"] == [NO_WINDOW]
    assert marks["format reward"] == [NOT_REWARDED]
    assert marks["SFT loss"] == [NO_SFT]
    assert marks["held-out answer accuracy"] == [NOT_ANSWERED]
    for ax in panels.values():
        assert ax.get_xlim() == (0, 1) and start_lines(ax) == []  # no SFT: no GRPO-start line
        assert ax.get_xlabel() == "GRPO step"
    plt.close(fig)


def test_write_learning_curves_writes_the_declared_files(tmp_path):
    paths = {}
    for name, summary in {
        "grpo_exp": grpo_summary(8, 2, {"answer": 1.0, "format": 1.0}),
        "grpo_tf": grpo_summary(8, 4, {"tf": 1.0, "format": 1.0}),
        "sft_tf": SFT,
    }.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(summary))
    entries = [
        {"variant": "EXP", "split": "loco_k562", "grpo": str(paths["grpo_exp"]), "sft": None},
        {"variant": "TF+GO", "split": "loco_k562", "grpo": str(paths["grpo_tf"]),
         "sft": str(paths["sft_tf"])},
    ]  # fmt: skip
    out = tmp_path / "figures"
    written = write_learning_curves(entries, out)
    declared = learning_curve_figures([("EXP", "loco_k562"), ("TF+GO", "loco_k562")])
    assert [p.name for p in written] == [n for f in declared for n in f.files(FIGURE_FORMATS)]
    assert written[0].name == "learning_curves_EXP_loco_k562.png"
    for path in written:
        if path.suffix == ".png":
            assert imread(path)[..., :3].std() > 0.05, path


# Each case parses the whole workflow (~13 s on 2 cores): the paper configuration in the default
# suite, its SFT overlay with the slow tests.
@pytest.mark.parametrize("sft_enabled", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_paper_target_declares_the_learning_curves(tmp_path, sft_enabled):
    """The parsed workflow (no DAG, no dry run): `paper` asks for every trained model's figure,
    and the rule drawing it takes that model's training summaries as inputs."""
    from tests.workflow.parsed import parsed_rules

    rules = parsed_rules(tmp_path, {"sft": {"enabled": sft_enabled}})
    paper = set(rules["paper"]["input"])
    outputs, inputs = (set(rules["learning_curves"][key]) for key in ("output", "input"))
    for stem in ("learning_curves_MLP_loco_k562", "learning_curves_TF+GO+MLP+EXP_loco_rpe1"):
        for extension in FIGURE_FORMATS:
            assert f"results/figures/{stem}.{extension}" in paper & outputs
    assert "results/models/MLP/loco_k562/training_summary.json" in inputs
    sft = "results/sft/MLP/loco_k562/training_summary.json"
    assert (sft in inputs) == sft_enabled


def test_learning_curves_are_logged_to_each_models_training_run(tmp_path):
    """Each model's figure files land in its own training run's artifacts (learning_curves/)."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("rbio", artifact_location=str(tmp_path / "artifacts"))
    client = mlflow.MlflowClient(uri)
    entries = []
    for variant in ("EXP", "TF+GO"):
        run_id = client.create_run(experiment, run_name=variant).info.run_id
        (tmp_path / variant).mkdir()
        (tmp_path / variant / "run.json").write_text(json.dumps({"run_id": run_id}))
        (tmp_path / variant / "grpo.json").write_text(json.dumps(grpo_summary(4, 2, {"answer": 1})))
        entries.append({"variant": variant, "split": "loco_k562", "sft": None,
                        "grpo": str(tmp_path / variant / "grpo.json"),
                        "run": str(tmp_path / variant / "run.json")})  # fmt: skip
    out = tmp_path / "figures"
    write_learning_curves(entries, out)
    run_ids = log_learning_curves(entries, out, uri)
    for variant, run_id in zip(("EXP", "TF+GO"), run_ids, strict=True):
        logged = {a.path for a in client.list_artifacts(run_id, "learning_curves")}
        stem = f"learning_curves/learning_curves_{variant}_loco_k562"
        assert logged == {f"{stem}.{fmt}" for fmt in FIGURE_FORMATS}, variant
    assert run_ids[0] != run_ids[1]
