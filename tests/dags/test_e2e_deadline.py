"""End to end: a run past its deadline still leaves its summary, and the check names
what it did not attempt.

The Docker DAG as shipped, with its time budget shrunk for a test: RERUN_DEADLINE 3
minutes (the DAG's is execution_timeout less 6 minutes), RERUN_WAIT 1 second (the binary
wants the deadline to exceed RERUN_CONFIRM + RERUN_WAIT + 30s) and no Airflow retry. The
stand-in has 300 failed plans and answers each request after 1 second, so the binary
cannot start every re-run before its start-by time: it stops, lists the rest as
not_attempted, writes its summary and exits 4. The re-run task fails (exit 4) but its
summary is still the XCom, and check_summary fails naming the plans not attempted,
counted and capped.

Needs the binary's RERUN_DEADLINE (the image fixture checks -h), podman, Go.
"""

from __future__ import annotations

import pendulum
import pytest

from conftest import DAGS, e2e, reruns, run
from e2e_airflow import make_airflow, podman_service
from looker_rerun_common import IDS_CAP

pytestmark = e2e

DAG_ID = "looker_rerun_docker"
LOOKERTEST_ARGS = ["-seed", "failures:300", "-latency", "1s"]
LOGICAL_DATE = pendulum.now("UTC").replace(microsecond=0)
# The DAG's time budget, shrunk (each line must be in the shipped file).
PATCHES = {
    "RERUN_WAIT = datetime.timedelta(minutes=15)": "RERUN_WAIT = datetime.timedelta(seconds=1)",
    "RERUN_DEADLINE = EXECUTION_TIMEOUT - DEADLINE_MARGIN": "RERUN_DEADLINE = datetime.timedelta(minutes=3)",
    "RETRIES = 1": "RETRIES = 0",
}


@pytest.fixture(scope="module")
def deadline_image(podman, image):
    usage = run(podman, "run", "--rm", "--network=none", image, "-h")
    assert "RERUN_DEADLINE" in usage.stdout + usage.stderr, f"{image}'s binary has no RERUN_DEADLINE: rebuild it"
    return image


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, lookertest, deadline_image):
    common = (DAGS / "looker_rerun_common.py").read_text()
    for old, new in PATCHES.items():
        assert common.count(old) == 1, f"{old!r} not in looker_rerun_common.py"
        common = common.replace(old, new)
    return make_airflow(
        tmp_path_factory.mktemp("airflow"),
        lookertest_url=lookertest["url"],
        image=deadline_image,
        files={"looker_rerun_docker.py": (DAGS / "looker_rerun_docker.py").read_text(), "looker_rerun_common.py": common},
        batch_dates=[LOGICAL_DATE.subtract(minutes=5), LOGICAL_DATE],
    )


def test_a_run_past_its_deadline_leaves_its_summary(podman, airflow, lookertest, tmp_path):
    with podman_service(podman, tmp_path, "deadline") as docker_host:
        output, result = airflow.dags_test(DAG_ID, LOGICAL_DATE, docker_host=docker_host)

    assert result["states"] == {
        "check_params": "success",
        "wait_for_nightly_batch": "success",
        "rerun_failed_deliveries": "failed",
        "check_summary": "failed",
    }, output
    summary = result["xcom"].get("rerun_failed_deliveries")
    assert isinstance(summary, dict), output
    assert summary["exit_code"] == 4, summary
    not_attempted = summary["not_attempted"]
    assert len(not_attempted) > IDS_CAP, summary
    # Counted and capped: the first few ids, then how many more.
    shown = ", ".join(map(str, not_attempted[:IDS_CAP]))
    more = len(not_attempted) - IDS_CAP
    assert f"{len(not_attempted):,} plans not attempted (the run was stopped): {shown}, … and {more:,} more" in output
    # Nothing was sent twice, and nothing listed as not attempted was sent.
    sent = reruns(lookertest["url"])
    assert set(sent.values()) <= {1}, sent
    assert not set(sent) & set(map(str, not_attempted)), sent
