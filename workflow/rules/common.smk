# Shared by every stage: config validation, typed config, wildcard constraints, input functions.

import re

from snakemake.utils import min_version, validate

from rbio.config import CELL_LINES, SOURCES, load_config

min_version("9.0")

validate(config, schema="../schemas/config.schema.yaml")
CFG = load_config(config)

LINES = list(CFG.data.cell_lines)
SPLITS = CFG.split_names
VARIANTS = list(CFG.variants)


def _alternatives(values):
    return "|".join(re.escape(value) for value in values)


wildcard_constraints:
    line=_alternatives(LINES),
    split=_alternatives(SPLITS),
    source=_alternatives(SOURCES),
    variant=_alternatives(VARIANTS),
    prompt=_alternatives(["nocot", "cot"]),


def data_dir():
    """Local data folder (config data.local_dir, overridden by $RBIO_DATA_DIR)."""
    return str(CFG.data.resolved_dir())
