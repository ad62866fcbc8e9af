# Shared by every stage: config validation, typed config, wildcard constraints, input functions.

import os
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


# The tracking store every stage logs to: $MLFLOW_TRACKING_URI when set, else config
# mlflow.tracking_uri. Declared so that cluster jobs receive it.
os.environ.setdefault("MLFLOW_TRACKING_URI", CFG.mlflow.resolved_uri())


envvars:
    "MLFLOW_TRACKING_URI",


def data_dir():
    """Local data folder (config data.local_dir, overridden by $RBIO_DATA_DIR)."""
    return str(CFG.data.resolved_dir())
