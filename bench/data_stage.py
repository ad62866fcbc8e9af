"""Benchmark: the data stage (acquire, ingest, every split) of the paper configuration on the full
real PerturbQA tables, through the real Snakemake DAG, timed end to end; and what each
leave-one-cell-line-out split tests, from the splits' leak reports: the share of the held-out
line's test rows whose perturbation (or exact pair) occurs in the other lines' training rows.

    OMP_NUM_THREADS=1 .venv/bin/python bench/data_stage.py

Goal (issue: foundation): <= 60 s on a 2-core machine.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    data_dir = Path(os.environ.get("RBIO_DATA_DIR") or REPO.parent / "shared" / "data").resolve()
    with tempfile.TemporaryDirectory() as workdir:
        command = [
            sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
            "--directory", workdir, "--configfile", str(REPO / "config.yaml"), "--cores", "2", "data", "--quiet", "progress",
        ]  # fmt: skip
        env = {**os.environ, "RBIO_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1"}
        start = time.perf_counter()
        subprocess.run(command, check=True, env=env)
        wall = time.perf_counter() - start
        rows = []
        for tsv in sorted(Path(workdir, "benchmarks").rglob("*.tsv")):
            with open(tsv) as handle:
                record = next(csv.DictReader(handle, delimiter="\t"))
            rows.append(
                (str(tsv.relative_to(workdir)), float(record["s"]), float(record["max_rss"]))
            )
        seen = [
            json.loads(path.read_text())
            for path in sorted(Path(workdir, "results", "splits").glob("loco_*/leak_report.json"))
        ]
    print(f"{'job':55s} {'seconds':>8s} {'max RSS MB':>11s}")
    for name, seconds, rss in rows:
        print(f"{name:55s} {seconds:8.2f} {rss:11.0f}")
    print(
        f"\ndata stage, paper config (4 lines, {sum('splits/' in r[0] for r in rows)} splits), 2 cores: {wall:.1f} s wall (goal <= 60 s)"
    )
    print(
        f"\n{'LOCO split':14s} {'test rows':>10s} {'pert seen elsewhere':>20s} {'pair seen':>10s}"
    )
    for report in seen:
        n = report["test_rows"]
        pert, pair = (
            report["test_rows_pert_seen_elsewhere"],
            report["test_rows_pair_seen_elsewhere"],
        )
        print(f"{report['split']:14s} {n:10,d} {pert / n:20.1%} {pair / n:10.1%}")
    return 0 if wall <= 60 else 1


if __name__ == "__main__":
    raise SystemExit(main())
