"""Gene Ontology index: direct gene -> GO term annotations per aspect, from either of two sources.

- ``remote``: the GO Consortium's standard files, a GAF 2.2 annotation file (``goa_human.gaf.gz``)
  and the ``go-basic.obo`` ontology, pinned to one dated release and parsed here;
- ``local``: the offline copies in ``../shared/data`` (NCBI gene2go edge files keyed by Entrez
  GeneID, propagated along is_a + part_of, with a ``type`` column telling direct from inferred
  rows; symbols from the NCBI gene table; term names from the node files).

Both give the same two tables: ``direct`` (gene, aspect, go_id, go_name) — the verifier's index —
and ``propagated`` (gene, aspect, go_id: direct plus every ancestor), a richer matrix for the GO
embedding.
"""

from __future__ import annotations

import gzip
import io
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rbio.io import download_verified, verify_sha256

log = logging.getLogger(__name__)

ASPECTS: tuple[str, ...] = ("C", "F", "P")
NAMESPACE_ASPECT: dict[str, str] = {
    "cellular_component": "C",
    "molecular_function": "F",
    "biological_process": "P",
}
INDEX_COLUMNS: tuple[str, ...] = ("gene", "aspect", "go_id", "go_name")

# A dated GO release, so a rerun reads the same files. The GO Consortium publishes no checksums
# for single files; the sha256 of what was downloaded is logged and kept in coverage.json.
GO_RELEASE = "2024-01-17"
REMOTE_URLS: dict[str, str] = {
    "gaf": f"https://release.geneontology.org/{GO_RELEASE}/annotations/goa_human.gaf.gz",
    "obo": f"https://release.geneontology.org/{GO_RELEASE}/ontology/go-basic.obo",
}

# Offline copies (../shared/data; sha256 from the PROVENANCE.md files).
LOCAL_FILES: dict[str, tuple[str, str]] = {
    "C": (
        "go_annotations_human/edge_Gene_locatedIn_CellularComponent.csv.gz",
        "08a2f166222d895e81514e9e83aa28cfa30ec0866277e16664b974951fb9d820",
    ),
    "F": (
        "go_annotations_human/edge_Gene_enables_MolecularFunction.csv.gz",
        "d4890e523f5c389412a85493e08af97c8e3e75c7cc171221dfd58b6e665f9f94",
    ),
    "P": (
        "go_annotations_human/edge_Gene_involvedIn_BiologicalProcess.csv.gz",
        "94ed196fd37e9a6bec99bc983c80403f44915a7aec82d5d9818edab4158785e8",
    ),
}
LOCAL_NODES: dict[str, str] = {
    "C": "go_annotations_human/node_CellularComponent.csv.gz",
    "F": "go_annotations_human/node_MolecularFunction.csv.gz",
    "P": "go_annotations_human/node_BiologicalProcess.csv.gz",
}
LOCAL_GENES = (
    "ncbi_human_genes/protein_coding_gene.csv",
    "86a7309dd510b511d0ecaa9063dcbd98d31445b8ffb0c4722ff0beddd5e82145",
)
LOCAL_TERMS = (
    "go_ontology/go_terms.tsv.gz",
    "7b69611f21668b155d6c3a8d24a8c6052be1311ee1c96b49f91936add7b9cac2",
)


class GoFormatError(ValueError):
    """A malformed GAF/OBO/edge file; the message names the file and line."""


def _open_text(path: str | Path) -> io.TextIOBase:
    path = Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")  # noqa: SIM115 - the caller closes it


# --------------------------------------------------------------------------------------------
# GAF 2.2
# --------------------------------------------------------------------------------------------

GAF_COLUMNS: tuple[str, ...] = (
    "db",
    "db_object_id",
    "symbol",
    "qualifier",
    "go_id",
    "reference",
    "evidence",
    "with_from",
    "aspect",
    "db_object_name",
    "synonyms",
    "db_object_type",
    "taxon",
    "date",
    "assigned_by",
    "annotation_extension",
    "gene_product_form_id",
)


def parse_gaf(path: str | Path, keep_negated: bool = False) -> pd.DataFrame:
    """Read a GAF 2.x file (17 tab-separated columns, ``!`` comment lines) into a frame.

    GAF 2.2 makes the qualifier (column 4) mandatory, a relation such as ``enables`` optionally
    prefixed ``NOT|``; ``NOT`` rows say the gene is *not* annotated and are dropped unless
    ``keep_negated``. Column ``negated`` tells them apart.
    """
    rows: list[list[str]] = []
    version = None
    with _open_text(path) as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\n\r")
            if not line:
                continue
            if line.startswith("!"):
                if line.startswith("!gaf-version:"):
                    version = line.split(":", 1)[1].strip()
                continue
            fields = line.split("\t")
            if len(fields) == 15 or len(fields) == 16:
                # GAF 2.0/2.1 files may omit the two trailing optional columns.
                fields += [""] * (17 - len(fields))
            if len(fields) != 17:
                raise GoFormatError(
                    f"{path}, line {number}: {len(fields)} tab-separated columns, GAF needs 17"
                )
            if not fields[4].startswith("GO:"):
                raise GoFormatError(f"{path}, line {number}: GO id '{fields[4]}' is not GO:nnnnnnn")
            if fields[8] not in ASPECTS:
                raise GoFormatError(
                    f"{path}, line {number}: aspect '{fields[8]}' is not one of {list(ASPECTS)}"
                )
            if not fields[2]:
                raise GoFormatError(f"{path}, line {number}: empty DB object symbol")
            rows.append(fields)
    if version is None:
        log.warning("%s: no '!gaf-version:' header; reading it as GAF 2.x anyway", path)
    frame = pd.DataFrame(rows, columns=list(GAF_COLUMNS))
    qualifiers = frame["qualifier"].str.split("|")
    frame["negated"] = qualifiers.map(lambda parts: "NOT" in parts).astype(bool)
    if not keep_negated:
        frame = frame[~frame["negated"]].reset_index(drop=True)
    return frame


# --------------------------------------------------------------------------------------------
# OBO 1.2 (go-basic.obo)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ontology:
    """Terms (go_id, name, namespace, is_obsolete), alt_id -> id, and child -> parent edges."""

    terms: pd.DataFrame
    alt_ids: dict[str, str]
    parents: dict[str, tuple[str, ...]]

    def primary(self, go_id: str) -> str:
        return self.alt_ids.get(go_id, go_id)

    def ancestors(self, go_id: str) -> set[str]:
        """Every ancestor along the stored edges, the term itself included."""
        seen = {go_id}
        stack = [go_id]
        while stack:
            for parent in self.parents.get(stack.pop(), ()):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen


def _stanzas(handle: Iterable[str], path: str | Path) -> Iterator[tuple[str, int, list[str]]]:
    kind, start, lines = None, 0, []
    for number, raw in enumerate(handle, start=1):
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            if kind is not None:
                yield kind, start, lines
            kind, start, lines = line[1:-1], number, []
        elif kind is not None and line and not line.startswith("!"):
            lines.append(line)
    if kind is not None:
        yield kind, start, lines


def parse_obo(path: str | Path, relations: tuple[str, ...] = ("is_a", "part_of")) -> Ontology:
    """Read an OBO 1.2 ontology (``go-basic.obo``): [Term] stanzas, names, namespaces, alt_ids.

    Parent edges follow ``is_a`` and the ``relationship:`` types in ``relations`` (GO annotation
    propagation uses is_a + part_of; go-basic guarantees these never cross namespaces).
    """
    records: list[tuple[str, str, str, bool]] = []
    alt_ids: dict[str, str] = {}
    parents: dict[str, list[str]] = defaultdict(list)
    with _open_text(path) as handle:
        for kind, start, lines in _stanzas(handle, path):
            if kind != "Term":
                continue
            tags: dict[str, list[str]] = defaultdict(list)
            for line in lines:
                tag, sep, value = line.partition(":")
                if not sep:
                    raise GoFormatError(
                        f"{path}, stanza at line {start}: '{line}' is not tag: value"
                    )
                # Drop trailing "! comment" and {qualifiers}; names keep everything.
                value = value.strip()
                tags[tag.strip()].append(value)
            if "id" not in tags:
                raise GoFormatError(f"{path}, stanza at line {start}: [Term] without an id")
            go_id = tags["id"][0]
            name = tags.get("name", [""])[0]
            namespace = tags.get("namespace", [""])[0]
            obsolete = tags.get("is_obsolete", ["false"])[0] == "true"
            records.append((go_id, name, namespace, obsolete))
            for alt in tags.get("alt_id", []):
                alt_ids[alt] = go_id
            for value in tags.get("is_a", []):
                parents[go_id].append(value.split("!")[0].split("{")[0].strip())
            for value in tags.get("relationship", []):
                relation, _, rest = value.partition(" ")
                if relation in relations:
                    parents[go_id].append(rest.split("!")[0].split("{")[0].strip())
    terms = pd.DataFrame.from_records(
        records, columns=["go_id", "name", "namespace", "is_obsolete"]
    )
    if terms.empty:
        raise GoFormatError(f"{path}: no [Term] stanzas")
    return Ontology(terms, alt_ids, {child: tuple(p) for child, p in parents.items()})


def index_from_gaf(gaf: pd.DataFrame, ontology: Ontology) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(direct index, propagated annotations) from a parsed GAF and ontology.

    alt_ids are mapped to their primary id; annotations to obsolete or unknown terms are dropped
    (and counted in the log), as the GO Consortium's own tools do.
    """
    known = ontology.terms.set_index("go_id")
    direct = pd.DataFrame(
        {
            "gene": gaf["symbol"].to_numpy(),
            "aspect": gaf["aspect"].to_numpy(),
            "go_id": [ontology.primary(go_id) for go_id in gaf["go_id"]],
        }
    )
    usable = direct["go_id"].isin(known.index[~known["is_obsolete"]])
    if (~usable).any():
        log.info("dropped %d annotation(s) to obsolete or unknown GO terms", int((~usable).sum()))
    direct = direct[usable].drop_duplicates().reset_index(drop=True)
    direct["go_name"] = direct["go_id"].map(known["name"])
    ancestors_of: dict[str, set[str]] = {}
    rows = []
    for gene, aspect, go_id in direct[["gene", "aspect", "go_id"]].itertuples(index=False):
        if go_id not in ancestors_of:
            ancestors_of[go_id] = ontology.ancestors(go_id)
        rows.extend((gene, aspect, ancestor) for ancestor in ancestors_of[go_id])
    propagated = pd.DataFrame(rows, columns=["gene", "aspect", "go_id"]).drop_duplicates()
    return _tidy(direct), propagated.sort_values(["gene", "aspect", "go_id"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Offline copies (NCBI gene2go edge files)
# --------------------------------------------------------------------------------------------


def index_from_edge_files(
    edges: dict[str, str | Path],
    nodes: dict[str, str | Path],
    genes_csv: str | Path,
    terms_tsv: str | Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(direct index, propagated annotations) from the gene2go edge/node files.

    ``edges`` and ``nodes`` map an aspect (C/F/P) to its file. Entrez GeneIDs become symbols via
    the NCBI gene table; rows whose GeneID is not in it are dropped and counted in the log.
    """
    gene_table = pd.read_csv(genes_csv, usecols=["GeneID", "Symbol"], dtype={"GeneID": "int64"})
    symbol_of = gene_table.set_index("GeneID")["Symbol"]
    names: dict[str, str] = {}
    if terms_tsv is not None:
        terms = pd.read_csv(terms_tsv, sep="\t", usecols=["go_id", "name"])
        names.update(zip(terms["go_id"], terms["name"], strict=True))
    direct_parts, propagated_parts = [], []
    for aspect, path in edges.items():
        if aspect not in ASPECTS:
            raise ValueError(f"aspect '{aspect}' for {path}; valid: {list(ASPECTS)}")
        frame = pd.read_csv(path, dtype={"source_id": "int64", "target_id": str, "type": str})
        missing = {"source_id", "target_id", "type"} - set(frame.columns)
        if missing:
            raise GoFormatError(f"{path}: missing column(s) {sorted(missing)}")
        bad_type = ~frame["type"].isin(["direct", "inferred"])
        if bad_type.any():
            row = int(bad_type.to_numpy().nonzero()[0][0])
            raise GoFormatError(
                f"{path}, line {row + 2}: type '{frame['type'].iloc[row]}' is not direct/inferred"
            )
        frame["gene"] = frame["source_id"].map(symbol_of)
        unmapped = frame["gene"].isna()
        if unmapped.any():
            log.info(
                "%s: %d row(s) with a GeneID absent from %s", path, int(unmapped.sum()), genes_csv
            )
        frame = frame[~unmapped]
        node_names = pd.read_csv(nodes[aspect])
        names.update(zip(node_names["identifier"], node_names["name"], strict=True))
        both = pd.DataFrame({"gene": frame["gene"], "aspect": aspect, "go_id": frame["target_id"]})
        propagated_parts.append(both)
        direct_parts.append(both[(frame["type"] == "direct").to_numpy()])
    direct = pd.concat(direct_parts, ignore_index=True).drop_duplicates()
    direct["go_name"] = direct["go_id"].map(names)
    unnamed = direct["go_name"].isna()
    if unnamed.any():
        log.info("%d direct annotation(s) to terms without a name dropped", int(unnamed.sum()))
        direct = direct[~unnamed]
    propagated = pd.concat(propagated_parts, ignore_index=True).drop_duplicates()
    propagated = propagated.sort_values(["gene", "aspect", "go_id"]).reset_index(drop=True)
    return _tidy(direct), propagated


def _tidy(direct: pd.DataFrame) -> pd.DataFrame:
    direct = direct[list(INDEX_COLUMNS)].astype(str)
    return direct.sort_values(["gene", "aspect", "go_id"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Acquisition and the coverage report
# --------------------------------------------------------------------------------------------


def load_go(
    origin: str, local_dir: str | Path | None, download_dir: str | Path
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(direct, propagated, provenance) from config ``data.origin`` (``local`` or ``remote``);
    the provenance names it ``source``, as coverage.json always has."""
    if origin == "local":
        root = Path(local_dir)
        provenance: dict[str, str] = {}
        for relative, digest in LOCAL_FILES.values():
            provenance[relative] = verify_sha256(root / relative, digest)
        provenance[LOCAL_GENES[0]] = verify_sha256(root / LOCAL_GENES[0], LOCAL_GENES[1])
        provenance[LOCAL_TERMS[0]] = verify_sha256(root / LOCAL_TERMS[0], LOCAL_TERMS[1])
        direct, propagated = index_from_edge_files(
            {aspect: root / relative for aspect, (relative, _) in LOCAL_FILES.items()},
            {aspect: root / relative for aspect, relative in LOCAL_NODES.items()},
            root / LOCAL_GENES[0],
            root / LOCAL_TERMS[0],
        )
        return direct, propagated, {"source": "local", "sha256": provenance}
    if origin == "remote":
        folder = Path(download_dir)
        digests = {}
        paths = {}
        for kind, url in REMOTE_URLS.items():
            paths[kind] = folder / Path(url).name
            digests[url] = download_verified(url, paths[kind], expected_sha256=None)
            log.info("%s -> %s (sha256 %s)", url, paths[kind], digests[url])
        gaf = parse_gaf(paths["gaf"])
        ontology = parse_obo(paths["obo"])
        direct, propagated = index_from_gaf(gaf, ontology)
        return direct, propagated, {"source": "remote", "release": GO_RELEASE, "sha256": digests}
    raise ValueError(f"unknown data origin '{origin}'; valid: local, remote")


def coverage_report(
    direct: pd.DataFrame, propagated: pd.DataFrame, perturbqa_genes: Iterable[str]
) -> dict:
    """Genes and terms per aspect, and how many PerturbQA genes (perts and monitored) have terms."""
    wanted = sorted(set(perturbqa_genes))
    annotated = set(direct["gene"])
    report: dict = {
        "genes_with_direct_annotation": len(annotated),
        "direct_annotations": len(direct),
        "propagated_annotations": len(propagated),
        "per_aspect": {},
        "perturbqa_genes": len(wanted),
        "perturbqa_genes_annotated": sum(gene in annotated for gene in wanted),
    }
    report["perturbqa_coverage"] = (
        round(report["perturbqa_genes_annotated"] / len(wanted), 4) if wanted else None
    )
    for aspect in ASPECTS:
        rows = direct[direct["aspect"] == aspect]
        genes = set(rows["gene"])
        report["per_aspect"][aspect] = {
            "genes": len(genes),
            "terms": int(rows["go_id"].nunique()),
            "annotations": len(rows),
            "perturbqa_genes_annotated": sum(gene in genes for gene in wanted),
        }
    report["perturbqa_genes_missing_examples"] = [g for g in wanted if g not in annotated][:50]
    return report
