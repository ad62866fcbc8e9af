"""Command line: ``rbio ask`` (questions to any model), ``rbio compare`` (MLflow runs table),
``rbio provenance`` (what made an artefact) and ``rbio tracking-server`` (a cluster's shared MLflow
server: PostgreSQL runs, S3 artifacts).

Examples::

    rbio ask "Is a knockdown of CPAMD8 in RPE1 cells likely to result in differential expression
    of SPARC? The answer is either yes or no." --model results/models/EXP/loco_k562
    rbio ask --questions questions.txt --model EXP --base Qwen/Qwen2.5-3B-Instruct --style cot
    rbio compare --tag stage=eval --tag split=loco_k562
    rbio provenance results/models/EXP/loco_k562
    MLFLOW_BACKEND_STORE_URI=postgresql://USER:PASSWORD@DBHOST:5432/mlflow \
    MLFLOW_ARTIFACTS_DESTINATION=s3://BUCKET/mlflow rbio tracking-server --port 5000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from rbio.evaluation.published import MANIFEST, PUBLISHED_VARIANTS, published_name

DEFAULT_PUBLISHED_DIR = "results/published"
DEFAULT_BASE = "results/models/base"
DEFAULT_CONFIG = "config.yaml"
# The perturbed and the measured gene of a PerturbQA question, in the wording of every template
# ("... knockdown of PERT ... expression of GENE ...").
QUESTION_GENES = re.compile(
    r"knockdown of (?P<pert>[^\s?.,;]+).*?expression of (?P<gene>[^\s?.,;]+)", re.IGNORECASE
)


class CliError(Exception):
    """A user error: printed without a traceback, exit status 2."""


def expected_failures() -> tuple[type[BaseException], ...]:
    """What the machine or the network, not a bug, makes fail: printed in one line, exit status 1.
    OSError covers missing or unreadable files and the network errors of requests, urllib and
    huggingface_hub; S3 downloads (boto3) raise botocore's own errors."""
    from rbio.config import ConfigError

    failures: list[type[BaseException]] = [OSError, ConfigError]
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # botocore is only needed to download released checkpoints
        pass
    else:
        failures += [BotoCoreError, ClientError]
    return tuple(failures)


# --------------------------------------------------------------------------------------------
# rbio ask
# --------------------------------------------------------------------------------------------


def read_questions(inline: Sequence[str], questions_file: str | None) -> list[str]:
    """Inline questions, then the file's lines (blank lines and ``#`` comments skipped)."""
    questions = [q.strip() for q in inline if q.strip()]
    if questions_file:
        path = Path(questions_file)
        if not path.is_file():
            raise CliError(f"questions file {path} does not exist")
        questions += [
            line.strip()
            for line in path.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
    if not questions:
        raise CliError("no question given: pass one as an argument or --questions FILE")
    return questions


def resolve_model(model: str, base: str, published_dir: str) -> tuple[str, str | None]:
    """(model folder, checkpoint folder or None) for a path or a released variant name."""
    path = Path(model)
    if path.is_dir():
        if (path / "config.json").is_file():
            return str(path), None
        if (path / MANIFEST).is_file() or list(path.glob("*.index.json")):
            return _checked_base(base, model), str(path)
        raise CliError(f"{path} is neither a model folder (config.json) nor a checkpoint folder")
    name = published_name(model)
    if name in PUBLISHED_VARIANTS:
        checkpoint = Path(published_dir) / name
        if not (checkpoint / MANIFEST).is_file():
            raise CliError(
                f"released checkpoint {name} is not downloaded to {checkpoint}; run "
                f"`snakemake results/published/{name}/manifest.json` (about 40 GB) or pass "
                "--download"
            )
        return _checked_base(base, model), str(checkpoint)
    raise CliError(
        f"model '{model}' not found: give a model folder (with config.json), a downloaded "
        f"checkpoint folder, or a released variant ({', '.join(PUBLISHED_VARIANTS)})"
    )


def _checked_base(base: str, model: str) -> str:
    if Path(base).is_dir() or (base.count("/") == 1 and not Path(base).exists()):
        return base
    raise CliError(f"base model {base} for checkpoint {model} does not exist (set --base)")


def gene_warnings(questions: Sequence[str], symbols) -> list[str]:
    """One line per gene symbol of a question that HGNC does not approve (``symbols``: a
    ``rbio.data.genes.SymbolMap``): the models saw approved symbols only, so an alias or a typo
    gets an answer about a gene they never read about."""
    warnings = []
    for number, question in enumerate(questions, 1):
        found = QUESTION_GENES.search(question)
        for symbol in (found["pert"], found["gene"]) if found else ():
            approved, status = symbols.classify(symbol)
            where = f"question {number}: gene '{symbol}'"
            if status == "remapped":
                warnings.append(f"{where} is an alias of {approved}: ask about {approved}")
            elif status == "ambiguous":
                warnings.append(f"{where} is an alias of several HGNC genes")
            elif status == "unmapped":
                nearest = symbols.nearest(symbol)
                hint = f" (did you mean {nearest}?)" if nearest and nearest != symbol else ""
                warnings.append(f"{where} is not an HGNC symbol{hint}")
    return warnings


def check_question_genes(questions: Sequence[str], alias_table: str | None) -> None:
    """Print :func:`gene_warnings` to stderr; a missing alias table is said once, not an error."""
    from rbio.config import DATA_DIR_ENV
    from rbio.data.folder import HGNC_ALIAS_TABLE
    from rbio.data.genes import SymbolMap, read_alias_table

    default = Path(os.environ.get(DATA_DIR_ENV) or "../shared/data") / HGNC_ALIAS_TABLE
    path = Path(alias_table) if alias_table else default
    if not path.is_file():
        print(f"rbio ask: gene symbols not checked: no HGNC alias table at {path} (--genes)",
              file=sys.stderr)  # fmt: skip
        return
    symbols = SymbolMap.from_table(read_alias_table(path))
    for line in gene_warnings(questions, symbols):
        print(f"rbio ask: warning: {line}", file=sys.stderr)


def ask(args: argparse.Namespace) -> int:
    from rbio.data.prompts import SYSTEM_PROMPTS
    from rbio.evaluation.generate import GenerationSettings, generate_hf, load_for_evaluation
    from rbio.rewards.parsing import parse_answer, parse_completion

    questions = read_questions(args.question, args.questions)
    check_question_genes(questions, args.genes)
    if args.download:
        name = published_name(args.model)
        if name in PUBLISHED_VARIANTS and not Path(args.model).is_dir():
            from rbio.evaluation.published import download_checkpoint

            download_checkpoint(name, Path(args.published_dir) / name)
    model_dir, checkpoint = resolve_model(args.model, args.base, args.published_dir)
    model, tokenizer = load_for_evaluation(model_dir, checkpoint)
    conversations = [
        [
            {"role": "system", "content": SYSTEM_PROMPTS[args.style]},
            {"role": "user", "content": question},
        ]
        for question in questions
    ]
    settings = GenerationSettings(
        greedy=True, num_samples=0, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size
    )
    completions = generate_hf(
        model, tokenizer, conversations, settings, progress=len(questions) > 1
    )
    records = []
    for question, text in zip(questions, completions.greedy, strict=True):
        text = text or ""
        records.append(
            {
                "question": question,
                "think": parse_completion(text).section("think").strip(),
                "answer": parse_answer(text),
                "completion": text,
            }
        )
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        for record in records:
            print(f"Q: {record['question']}")
            print(f"think: {record['think'] or '(none)'}")
            # An unreadable completion on one line: a model's runs of newlines stay in --json.
            shown = " ".join(record["completion"].split())[:200]
            print(f"answer: {record['answer'] or f'(unparseable: {shown!r})'}")
            print()
    return 0


# --------------------------------------------------------------------------------------------
# rbio compare
# --------------------------------------------------------------------------------------------


def parse_tags(pairs: Sequence[str]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--tag expects KEY=VALUE, got '{pair}'")
        tags[key] = value
    return tags


def compare(args: argparse.Namespace) -> int:
    from rbio.reporting.mlflow_compare import (
        StoreError,
        check_store,
        search_runs_table,
        store_from_config,
        write_runs_table,
    )

    configs = args.config or ([DEFAULT_CONFIG] if Path(DEFAULT_CONFIG).is_file() else [])
    try:
        uri, experiment = store_from_config(configs, args.tracking_uri)
        experiment = args.experiment or experiment or "rbio"
        check_store(uri, experiment)
    except StoreError as error:
        raise CliError(str(error)) from error
    table = search_runs_table(uri, experiment, parse_tags(args.tag))
    if args.out:
        write_runs_table(table, args.out)
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(
            table.to_string(index=False)
            if len(table)
            else f"no runs in experiment '{experiment}' match the tags ({uri})"
        )
    return 0


# --------------------------------------------------------------------------------------------
# rbio provenance
# --------------------------------------------------------------------------------------------


def show_provenance(args: argparse.Namespace) -> int:
    from rbio import provenance

    for index, path in enumerate(args.path):
        try:
            record = provenance.read(path)
        except FileNotFoundError as error:
            raise CliError(f"{error} (artefacts of the workflow carry one)") from None
        except ValueError as error:  # not JSON
            raise CliError(f"{path}: not a provenance record ({error})") from None
        if args.json:
            print(json.dumps(record, indent=2, sort_keys=True))
        else:
            print(("\n" if index else "") + f"{path}\n" + provenance.describe(record))
    return 0


# --------------------------------------------------------------------------------------------
# rbio tracking-server
# --------------------------------------------------------------------------------------------


def tracking_server(args: argparse.Namespace) -> int:
    """Replace this process by ``mlflow server`` (signals reach it directly)."""
    import os

    from rbio.tracking import public_uri
    from rbio.tracking_server import (
        ARTIFACTS_ENV,
        BACKEND_ENV,
        ServerSettings,
        server_command,
        tracking_uri,
    )

    settings = ServerSettings(
        backend_store_uri=args.backend_store_uri or os.environ.get(BACKEND_ENV, ""),
        artifacts_destination=args.artifacts_destination or os.environ.get(ARTIFACTS_ENV, ""),
        host=args.host,
        port=args.port,
        workers=args.workers,
    )
    argv, env = server_command(settings, os.environ)
    print(
        f"runs: {public_uri(settings.backend_store_uri)}, artifacts: "
        f"{public_uri(settings.artifacts_destination)}\n"
        f"jobs log here with: export MLFLOW_TRACKING_URI={tracking_uri(settings)}\n"
        f"{' '.join(argv)}",
        flush=True,
    )
    os.execve(argv[0], argv, env)
    return 1  # not reached


def add_tracking_server_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "tracking-server",
        help="a cluster's MLflow tracking server: PostgreSQL runs, S3 artifacts",
        description="Store URIs with credentials: prefer the environment variables, which no "
        "process list shows.",
    )
    parser.add_argument(
        "--backend-store-uri", help="postgresql://... (default: $MLFLOW_BACKEND_STORE_URI)"
    )
    parser.add_argument(
        "--artifacts-destination",
        help="s3://BUCKET/PREFIX (default: $MLFLOW_ARTIFACTS_DESTINATION)",
    )
    parser.add_argument("--host", default="0.0.0.0", help="interface to listen on")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4, help="server processes")
    parser.set_defaults(handler=tracking_server)


# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rbio", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    ask_parser = commands.add_parser("ask", help="ask a model yes/no questions")
    ask_parser.add_argument("question", nargs="*", help="question text(s)")
    ask_parser.add_argument("--questions", help="file with one question per line")
    ask_parser.add_argument(
        "--model", required=True, help="model folder, checkpoint folder, or released variant"
    )
    ask_parser.add_argument("--base", default=DEFAULT_BASE, help="base model for checkpoints")
    ask_parser.add_argument("--published-dir", default=DEFAULT_PUBLISHED_DIR)
    ask_parser.add_argument("--download", action="store_true", help="download a released variant")
    ask_parser.add_argument("--style", choices=["nocot", "cot"], default="nocot")
    ask_parser.add_argument("--max-new-tokens", type=int, default=1024)
    ask_parser.add_argument("--batch-size", type=int, default=16)
    ask_parser.add_argument("--json", action="store_true", help="print JSON records")
    ask_parser.add_argument(
        "--genes",
        help="HGNC alias table the questions' gene symbols are checked against (default: the "
        "data folder's, $RBIO_DATA_DIR or ../shared/data)",
    )
    ask_parser.set_defaults(handler=ask)

    compare_parser = commands.add_parser("compare", help="table of MLflow runs filtered by tags")
    compare_parser.add_argument(
        "--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else the config's mlflow section"
    )
    compare_parser.add_argument(
        "--config",
        action="append",
        help="the workflow's config file(s), later ones win (default: ./config.yaml); a relative "
        "sqlite store in them is relative to the first one's folder",
    )
    compare_parser.add_argument(
        "--experiment", help="default: $MLFLOW_EXPERIMENT_NAME, else the config's, else rbio"
    )
    compare_parser.add_argument("--tag", action="append", default=[], help="KEY=VALUE filter")
    compare_parser.add_argument("--out", help="also write the table as CSV")
    compare_parser.set_defaults(handler=compare)

    provenance_parser = commands.add_parser(
        "provenance", help="what made an artefact: rule, settings, code, lock, input digests"
    )
    provenance_parser.add_argument(
        "path", nargs="+", help="an artefact folder or its provenance.json"
    )
    provenance_parser.add_argument("--json", action="store_true", help="print the record as JSON")
    provenance_parser.set_defaults(handler=show_provenance)
    add_tracking_server_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except CliError as error:
        print(f"rbio {args.command}: error: {error}", file=sys.stderr)
        return 2
    except expected_failures() as error:
        message = " ".join(str(error).split())  # one line, whatever the library's layout
        print(f"rbio {args.command}: error: {type(error).__name__}: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
