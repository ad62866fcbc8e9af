"""The workflow as Snakemake parses it, without planning a DAG (no dry run): each rule's inputs
and outputs as declared, for tests that only ask what a rule or target declares."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from tests.helpers import REPO

# In a subprocess: parsing changes the working directory, sys.path and Snakemake's logging.
PARSE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    snakefile, workdir, out, *configfiles = sys.argv[1:]
    with SnakemakeApi(OutputSettings()) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=[Path(c) for c in configfiles]),
            snakefile=Path(snakefile),
            workdir=Path(workdir),
        )._workflow
        rules = {rule.name: {"input": [str(f) for f in rule.input],
                             "output": [str(f) for f in rule.output]} for rule in workflow.rules}
    Path(out).write_text(json.dumps(rules))
    """
)


def parsed_rules(tmp_path: Path, overlay: dict | None = None) -> dict[str, dict[str, list[str]]]:
    """rule name -> {"input": [...], "output": [...]} of the paper configuration (config.yaml,
    ``overlay`` on top); an input function taking wildcards shows as the function, not files."""
    configfiles = [str(REPO / "config.yaml")]
    if overlay:
        (tmp_path / "overlay.yaml").write_text(yaml.safe_dump(overlay))
        configfiles.append(str(tmp_path / "overlay.yaml"))
    out = tmp_path / "rules.json"
    subprocess.run(
        [sys.executable, "-c", PARSE, str(REPO / "Snakefile"), str(tmp_path), str(out),
         *configfiles],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.read_text())
