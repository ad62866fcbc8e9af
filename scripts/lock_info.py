"""What the Makefile needs from uv.lock (standard library only until .venv exists).

lock_info.py version NAME      the locked version of one distribution
lock_info.py cuda-runtime      the CUDA runtime distributions a CPU install leaves out
lock_info.py check-installed EXTRA...  fail unless this environment equals the lock
lock_info.py write-envs        regenerate envs/*.yaml from the lock
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from rbio.lockfile import Lock, compare_with_installed, installed_versions, render_conda_env  # noqa: E402

# One conda environment per stage (Snakemake's --software-deployment-method conda): the
# distributions its rules' scripts import (tests/test_envs.py checks that), pinned from the lock.
# The rbio package itself comes from the checkout (PYTHONPATH=src, set by the workflow).
STAGE_ENVIRONMENTS = {
    "data": (
        "Data stage and prompt datasets: acquire_perturbqa, acquire_hgnc_aliases, "
        "ingest_perturbqa,\nmake_split, build_prompts.",
        ["numpy", "pandas", "pyarrow", "requests", "pyyaml", "jsonschema", "datasets", "torch",
         "safetensors", "nltk"],
    ),
    "verifiers": (
        "Verifiers without TranscriptFormer: build_go_index, gene_embeddings, train_mlp_verifier,"
        "\nand precompute_tf_pmi with the expression backend (transcriptformer backend: "
        "transcriptformer.yaml).",
        ["numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "torch", "safetensors", "anndata",
         "scanpy", "h5py", "requests", "pyyaml", "jsonschema", "datasets", "nltk"],
    ),
    "training": (
        "GRPO post-training: prepare_base_model, train_grpo. TRL, accelerate, peft, DeepSpeed\n"
        "(multi-GPU ZeRO-3) and vLLM (generation), MLflow tracking.",
        ["torch", "transformers", "tokenizers", "trl", "accelerate", "peft", "deepspeed", "vllm",
         "datasets", "safetensors", "huggingface-hub", "mlflow", "numpy", "pandas", "pyarrow",
         "scipy", "scikit-learn", "requests", "pyyaml", "jsonschema", "tqdm", "boto3", "nltk"],
    ),
    "evaluation": (
        "Evaluation and the paper's artefacts: evaluate_model, download_published_checkpoint,\n"
        "evaluate_baselines, paper_tables, paper_figures, compare_runs (vLLM for generation).",
        ["torch", "transformers", "tokenizers", "vllm", "datasets", "safetensors",
         "huggingface-hub", "mlflow", "boto3", "numpy", "pandas", "pyarrow", "scipy",
         "scikit-learn", "matplotlib", "requests", "pyyaml", "jsonschema", "tqdm", "nltk"],
    ),
}  # fmt: skip
# TranscriptFormer pins an older torch: its environment has its own project and lock.
TRANSCRIPTFORMER = REPO / "envs" / "transcriptformer"


def env_files() -> dict[Path, str]:
    """envs/*.yaml as the locks make them (tests/test_envs.py compares them with the files)."""
    lock = Lock.read(REPO / "uv.lock")
    files = {
        REPO / "envs" / f"{name}.yaml": render_conda_env(lock, header, distributions)
        for name, (header, distributions) in STAGE_ENVIRONMENTS.items()
    }
    tf_lock = Lock.read(TRANSCRIPTFORMER / "uv.lock")
    header = (TRANSCRIPTFORMER / "pyproject.toml").read_text().split("[project]")[0]
    header = "\n".join(line.removeprefix("# ") for line in header.strip().splitlines())
    files[REPO / "envs" / "transcriptformer.yaml"] = render_conda_env(
        tf_lock, header, tf_lock.direct_dependencies(), "envs/transcriptformer/uv.lock"
    )
    return files


def main(command: str, *args: str) -> int:
    lock = Lock.read(REPO / "uv.lock")
    if command == "version":
        print(lock.version(args[0]))
    elif command == "cuda-runtime":
        print(" ".join(lock.cuda_runtime()))
    elif command == "check-installed":
        problems = compare_with_installed(lock, args, installed_versions())
        for problem in problems:
            print(f"not as locked: {problem}", file=sys.stderr)
        return 1 if problems else 0
    elif command == "write-envs":
        for path, text in env_files().items():
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO)}")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
