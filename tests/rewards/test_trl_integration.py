"""The registry's rewards inside TRL's GRPOTrainer: names, None handling, log_metric hook."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # imports TRL and trains a few steps (~20-40 s on CPU)


def test_two_grpo_steps_log_every_reward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rbio.config import Variant
    from rbio.models import load_model_and_tokenizer
    from rbio.rewards.registry import build_reward_functions
    from rbio.sources import default_rewards
    from rbio.training.tiny_model import build_tiny_model

    folder = tmp_path / "tiny"
    build_tiny_model(folder, ["TP53 is associated with: DNA binding."], seed=0, hidden_size=32)
    model, tokenizer = load_model_and_tokenizer(folder)
    n = 8
    dataset = Dataset.from_dict(
        {
            "prompt": [
                [{"role": "user", "content": f"Does TP53 change MDM2? {i}"}] for i in range(n)
            ],
            "source": ["go", "exp"] * (n // 2),
            "classes": ["no|yes"] * n,
            "class_confidences": ["", "0.3|0.7"] * (n // 2),
            "keywords": [["TP53", "MDM2"]] * n,
            "pert": ["TP53"] * n,
            "gene": ["MDM2"] * n,
            "pert_go_terms": [["DNA binding"], []] * (n // 2),
            "gene_go_terms": [["nucleus"], []] * (n // 2),
        }
    )
    sources = {"go": 1.0, "exp": 1.0}
    variant = Variant(
        "GO+EXP",
        sources,
        {**default_rewards(sources, go_composition="mean"), "go_likelihood": 0.1},
        ("all",),
    )
    functions, weights = build_reward_functions(variant, model=model, tokenizer=tokenizer)
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        use_cpu=True,
        bf16=False,
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=16,
        logging_steps=1,
        report_to="none",
        beta=0.0,
        reward_weights=weights,
        save_strategy="no",
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=functions,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train()
    logged = trainer.state.log_history[0]
    for name in variant.rewards:
        assert f"rewards/{name}/mean" in logged
    assert logged["rewards/go_likelihood/mean"] < 0
    assert 0.0 <= logged["rewards/format/mean"] <= 1.0
    assert "go_keyword/unannotated_share" in logged
