# Verifiers: GO index, gene embeddings, the MLP verifier per split, TranscriptFormer/expression PMI.


rule build_go_index:
    input:
        perturbqa="results/data/perturbqa.parquet",
    output:
        index="results/verifiers/go/index.parquet",
        propagated="results/verifiers/go/propagated.parquet",
        coverage="results/verifiers/go/coverage.json",
        provenance="results/verifiers/go/provenance.json",
    log:
        "logs/verifiers/go/build_go_index.log",
    benchmark:
        "benchmarks/verifiers/go/build_go_index.tsv"
    conda:
        "../../envs/verifiers.yaml"
    params:
        origin=CFG.data.origin,
    script:
        "../scripts/build_go_index.py"


rule gene_embeddings:
    input:
        unpack(embedding_inputs),
        perturbqa="results/data/perturbqa.parquet",
    output:
        embedding="results/verifiers/embeddings/{emb}.safetensors",
        coverage="results/verifiers/embeddings/{emb}.coverage.json",
        provenance="results/verifiers/embeddings/{emb}.provenance.json",
    log:
        "logs/verifiers/embeddings/{emb}.log",
    benchmark:
        "benchmarks/verifiers/embeddings/{emb}.tsv"
    wildcard_constraints:
        emb="esm2|go_svd|onehot",
    conda:
        "../../envs/verifiers.yaml"
    params:
        settings=embedding_settings,
    script:
        "../scripts/gene_embeddings.py"


rule train_mlp_verifier:
    input:
        train="results/splits/{split}/train.parquet",
        test="results/splits/{split}/test.parquet",
        embedding=f"results/verifiers/embeddings/{CFG.verifiers.embeddings.kind}.safetensors",
    output:
        model="results/verifiers/mlp/{split}/model.safetensors",
        config="results/verifiers/mlp/{split}/config.json",
        scores="results/verifiers/mlp/{split}/scores.parquet",
        metrics="results/verifiers/mlp/{split}/metrics.json",
        provenance="results/verifiers/mlp/{split}/provenance.json",
    log:
        "logs/verifiers/mlp/{split}.log",
    benchmark:
        "benchmarks/verifiers/mlp/{split}.tsv"
    conda:
        "../../envs/verifiers.yaml"
    params:
        mlp=mlp_verifier_settings(),
        seed=CFG.seed,
        cell_lines=LINES,
    script:
        "../scripts/train_mlp_verifier.py"


rule precompute_tf_pmi:
    input:
        unpack(tf_pmi_inputs),
        perturbqa="results/data/perturbqa.parquet",
    output:
        pmi="results/verifiers/tf_pmi/pmi.parquet",
        questions="results/verifiers/tf_pmi/questions.parquet",
        report="results/verifiers/tf_pmi/report.json",
        provenance="results/verifiers/tf_pmi/provenance.json",
    log:
        "logs/verifiers/tf_pmi/precompute_tf_pmi.log",
    benchmark:
        "benchmarks/verifiers/tf_pmi/precompute_tf_pmi.tsv"
    conda:
        (
            "../../envs/transcriptformer.yaml"
            if CFG.verifiers.tf_pmi.backend == "transcriptformer"
            else "../../envs/verifiers.yaml"
        )
    # TranscriptFormer needs a GPU; the expression backend runs anywhere.
    resources:
        gpu=1 if CFG.verifiers.tf_pmi.backend == "transcriptformer" else 0,
    params:
        tf_pmi=tf_pmi_settings(),
    script:
        "../scripts/precompute_tf_pmi.py"
