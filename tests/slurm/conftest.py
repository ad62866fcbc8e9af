"""The SLURM cluster the `slurm`-marked tests submit to (scripts/slurm/setup_slurm.sh starts one).

Without a reachable controller these tests skip, unless RBIO_REQUIRE_SLURM=1 (CI sets it after
starting the cluster): then they fail, so a broken cluster cannot pass as a skipped test.
"""

from __future__ import annotations

import os

import pytest

from tests.slurm import scheduler


@pytest.fixture(scope="session")
def slurm_config() -> dict[str, str]:
    """`scontrol show config` of the running controller."""
    problem = scheduler.controller_reachable()
    if problem is not None:
        if os.environ.get("RBIO_REQUIRE_SLURM") == "1":
            pytest.fail(f"RBIO_REQUIRE_SLURM=1 but {problem}")
        pytest.skip(problem)
    return scheduler.controller_config()
