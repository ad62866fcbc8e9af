# Data stage: PerturbQA tables (checksummed) -> one tidy, symbol-normalised table -> splits.


# Downloads need the internet, which compute nodes of a cluster often lack.
localrules:
    acquire_perturbqa,
    acquire_hgnc_aliases,


rule acquire_perturbqa:
    input:
        data_folder_check(
            "acquire_perturbqa", local_table(table_name("{line}", "{task}"))
        ),
    output:
        "results/data/raw/perturbqa/{line}-{task}.csv",
    log:
        "logs/data/acquire_perturbqa/{line}-{task}.log",
    wildcard_constraints:
        task="de|dir",
    conda:
        "../../envs/data.yaml"
    params:
        origin=CFG.data.origin,
    script:
        "../scripts/acquire_perturbqa.py"


rule acquire_hgnc_aliases:
    input:
        data_folder_check("acquire_hgnc_aliases", HGNC_ALIAS_TABLE),
    output:
        "results/data/raw/hgnc_aliases.tsv.gz",
    log:
        "logs/data/acquire_hgnc_aliases.log",
    conda:
        "../../envs/data.yaml"
    params:
        origin=CFG.data.origin,
    script:
        "../scripts/acquire_hgnc_aliases.py"


rule ingest_perturbqa:
    input:
        de=expand("results/data/raw/perturbqa/{line}-de.csv", line=LINES),
        direction=expand("results/data/raw/perturbqa/{line}-dir.csv", line=LINES),
        aliases="results/data/raw/hgnc_aliases.tsv.gz",
    output:
        table="results/data/perturbqa.parquet",
        report="results/data/ingest_report.json",
    log:
        "logs/data/ingest_perturbqa.log",
    benchmark:
        "benchmarks/data/ingest_perturbqa.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        lines=LINES,
    script:
        "../scripts/ingest_perturbqa.py"


rule make_split:
    input:
        "results/data/perturbqa.parquet",
    output:
        train="results/splits/{split}/train.parquet",
        test="results/splits/{split}/test.parquet",
        validation="results/splits/{split}/validation.parquet",
        report="results/splits/{split}/leak_report.json",
        provenance="results/splits/{split}/provenance.json",
    log:
        "logs/splits/{split}.log",
    benchmark:
        "benchmarks/splits/{split}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        cell_lines=LINES,
        max_test_rows=CFG.splits.max_test_rows,
        gene_panel=CFG.splits.gene_panel,
        validation_rows=CFG.splits.validation_rows,
        seed=CFG.seed,
    script:
        "../scripts/make_split.py"
