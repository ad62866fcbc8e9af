"""The optional SFT stage: targets per source (worked examples) and a 2-step run of SFTTrainer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rbio.config import SftConfig, Variant
from rbio.rewards.format import FormatReward
from rbio.rewards.parsing import parse_answer
from rbio.training.sft import SftJob, sft_dataset, sft_target, train_sft, variant_sees_labels
from tests.training.conftest import prompt_rows, save_prompts, tiny_config


def de_row(**changes):
    """An EXP row as the prompt stage writes it: TP53 knockdown, MDM2 not DE (label 0)."""
    row = {
        "source": "exp", "cell_line": "K562", "pert": "TP53", "gene": "MDM2", "label": 0,
        "negated": False, "classes": "no|yes", "class_confidences": "1|0",
        "pert_go_terms": [], "gene_go_terms": [],
    }  # fmt: skip
    return {**row, **changes}


def test_exp_target_answers_the_label_and_names_the_genes():
    assert sft_target(de_row(), labels_visible=True) == (
        "<think>The question concerns TP53 and MDM2 in K562 cells.</think><answer>no</answer>"
    )
    # A negated paraphrase: the prompt stage already flipped label and confidences.
    negated = de_row(label=1, negated=True, class_confidences="0|1")
    assert parse_answer(sft_target(negated, labels_visible=True)) == "yes"


def test_mlp_target_is_the_verifiers_decision_not_the_label():
    # The experimental label says DE (1) but the MLP verifier gives P(DE) = 0.3: taught "no".
    row = de_row(source="mlp", label=1, class_confidences="0.7|0.3")
    assert parse_answer(sft_target(row, labels_visible=False)) == "no"
    assert parse_answer(sft_target({**row, "class_confidences": "0.4|0.6"}, False)) == "yes"


def test_tf_target_answers_the_coexpression_question_without_a_cell_line():
    row = de_row(source="tf", cell_line="", pert="CD3E", gene="CD3D", class_confidences="0.1|0.9")
    assert sft_target(row, labels_visible=False) == (
        "<think>The question concerns CD3E and CD3D.</think><answer>yes</answer>"
    )


def test_go_target_lists_the_rows_terms_and_never_reads_the_label_without_exp():
    row = de_row(
        source="go",
        label=1,
        class_confidences="",
        pert_go_terms=["nucleus", "DNA binding"],
        gene_go_terms=["cytosol"],
    )
    target = sft_target(row, labels_visible=False)
    assert target == (
        "<gene_info>TP53: nucleus; DNA binding. MDM2: cytosol.</gene_info>"
        "<think>TP53 and MDM2 share no annotated GO term.</think><answer>no</answer>"
    )
    # The label (1) is not what a GO-only variant is taught; with EXP beside GO it is.
    assert parse_answer(sft_target(row, labels_visible=True)) == "yes"
    # A negated question about genes sharing a term: "unchanged?" -> no.
    shared = {**row, "gene_go_terms": ["nucleus"], "negated": True}
    assert "share the GO term(s) nucleus" in sft_target(shared, labels_visible=False)
    assert parse_answer(sft_target(shared, labels_visible=False)) == "no"


@pytest.mark.parametrize("source", ["exp", "mlp", "tf", "go_c"])
def test_every_target_gets_full_format_reward(source):
    go = source.startswith("go")
    row = de_row(
        source=source,
        class_confidences="" if go else "0.2|0.8",
        pert_go_terms=["nucleus"] if go else [],
    )
    assert FormatReward()([sft_target(row, labels_visible=False)], source=[source]) == [1.0]


def test_only_exp_makes_labels_visible():
    cfg = tiny_config()
    assert {name: variant_sees_labels(v) for name, v in cfg.variants.items()} == {
        name: "exp" in v.sources for name, v in cfg.variants.items()
    }
    assert not variant_sees_labels(cfg.variants["GO"])
    assert variant_sees_labels(cfg.variants["GO+EXP"])


def test_sft_set_is_the_grpo_training_set_with_completions(tmp_path):
    from rbio.training.mixture import build_training_set

    variant = Variant("EXP", {"exp": 1.0}, {"answer": 2.0}, ("loco_k562",))
    prompts = save_prompts(tmp_path / "exp", prompt_rows("exp"))
    sft, _ = sft_dataset({"exp": str(prompts)}, variant, seed=3)
    grpo, _ = build_training_set({"exp": str(prompts)}, variant.sources, seed=3)
    assert sft["prompt"] == grpo["prompt"]
    answers = [parse_answer(c[0]["content"]) for c in sft["completion"]]
    assert answers == ["yes" if y else "no" for y in grpo["label"]]


def test_sft_trainer_runs_two_steps_and_writes_a_model(
    tiny_model_dir, exp_prompts, validation_rows, tmp_path
):
    from rbio.models import load_model_and_tokenizer

    cfg = tiny_config()
    settings = SftConfig(
        {**cfg.sft, "enabled": True, "max_steps": 2, "logging_steps": 1, "heldout_every_steps": 1}
    )
    out = tmp_path / "sft" / "EXP" / "loco_k562"
    summary = train_sft(
        SftJob(
            variant=cfg.variants["EXP"],
            split="loco_k562",
            sft=settings,
            seed=cfg.seed,
            base_model=str(tiny_model_dir),
            prompt_dirs={"exp": str(exp_prompts)},
            out_dir=str(out),
            validation=str(validation_rows),
            heldout_max_new_tokens=16,
        )
    )
    assert summary["steps"] == 2 and len(summary["loss_curve"]) == 2
    assert [point["step"] for point in summary["heldout_curve"]] == [0, 1, 2]
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert json.loads((out / "training_summary.json").read_text())["steps"] == 2
    assert not list(Path(out.parent).glob(".tmp-*")), "written atomically"
    load_model_and_tokenizer(out)  # loads like any model folder (GRPO starts from it)


def test_cpu_completion_loss_equals_trls_loss(tiny_model_dir, exp_prompts, tmp_path):
    """The CPU path's loss is TRL's number: same batch, same model, with and without the
    gradient-accumulation denominator."""
    import torch
    from trl import SFTTrainer

    from rbio.models import load_model_and_tokenizer
    from rbio.training.completion_loss import completion_nll
    from rbio.training.sft import SFT_COLUMNS, sft_arguments

    cfg = tiny_config()
    job = SftJob(
        variant=cfg.variants["EXP"],
        split="loco_k562",
        sft=SftConfig({**cfg.sft, "enabled": True, "per_device_train_batch_size": 4}),
        seed=cfg.seed,
        base_model=str(tiny_model_dir),
        prompt_dirs={"exp": str(exp_prompts)},
        out_dir=str(tmp_path / "unused"),
    )
    model, tokenizer = load_model_and_tokenizer(job.base_model, dtype=torch.float32)
    dataset, _ = sft_dataset(job.prompt_dirs, job.variant, job.seed)
    trainer = SFTTrainer(
        model=model,
        args=sft_arguments(job, str(tmp_path / "scratch"), cuda=False),
        train_dataset=dataset.select_columns(list(SFT_COLUMNS)),
        processing_class=tokenizer,
    )
    batch = next(iter(trainer.get_train_dataloader()))
    scored = int((batch["labels"][:, 1:] != -100).sum())
    prompt_positions = int((batch["labels"] == -100).sum())
    assert 0 < scored < prompt_positions, "completion-only: the prompt carries no loss"
    with torch.no_grad():
        trl_loss = trainer.model(**batch, fused_lm_head=True).loss
        ours = completion_nll(trainer.model, batch)
        trl_accumulated = trainer.model(**batch, fused_lm_head=True, num_items_in_batch=3 * scored)
        ours_accumulated = completion_nll(trainer.model, batch, num_items_in_batch=3 * scored)
    torch.testing.assert_close(ours, trl_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours_accumulated, trl_accumulated.loss, rtol=1e-5, atol=1e-6)
    assert ours_accumulated.item() == pytest.approx(ours.item() / 3, rel=1e-5)
