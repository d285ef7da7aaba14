"""End to end: Airflow runs looker_rerun_docker with the real DockerOperator, on podman.

Airflow 3.3 (`airflow dags test`, a temporary AIRFLOW_HOME with SQLite) runs the DAG
from a dags folder holding what a Docker-only deployment copies (looker_rerun_docker.py
and looker_rerun_common.py, no Kubernetes DAG) plus a stand-in batch DAG,
e2e_dags/nightly_batch.py, whose asset event lets the sensor pass. The DockerOperator
talks to `podman system service` on a socket of the test's own (DOCKER_HOST), which runs
the image (scripts/image-test.sh builds it) against the stand-in Looker on 127.0.0.1;
the container reaches it through the DAG's network setting, the Variable
looker_rerun_docker_network=host. The Looker credentials come from the Connection
looker_rerun, the base URL and image from Variables, as the README's install says.

Three runs of the same 24 hours, against one stand-in with the demo seed (plan 106
failed 20 hours before it started: after 10:00 the day before, in the window):

1. A run that needs a person: plan 105's failure ("Webhook answered 502") is made
   permanent with RERUN_PERMANENT_PATTERN, which this podman service adds to every
   container's environment (containers.conf ``env``) so the DAG runs as shipped. The
   re-run task succeeds with the summary as its XCom; check_summary fails naming plan
   105; plans 101 and 106 are re-run.
2. The same run cleared and run again without that pattern: only plan 105 is re-run,
   everything succeeds.
3. Another DAG run over the same interval (the window given as params): nothing is sent
   twice.

Needs: podman (scripts/podman-setup.sh), the image (IMAGE, default looker-rerun:test), Go.
A missing piece fails the test; DAG_E2E=0 skips it on purpose.
"""

from __future__ import annotations

import json

import pendulum
import pytest

from conftest import CLIENT_SECRET, e2e, reruns
from e2e_airflow import make_airflow, podman_service, rfc3339
from looker_rerun_common import ACTIVITY_MARGIN, WINDOW

pytestmark = e2e

DAG_ID = "looker_rerun_docker"
# The stand-in's demo seed fails plan 105 with this detail; as a permanent pattern it
# makes the plan one that needs a person.
PERMANENT_PATTERN = "Webhook answered 502"
# The runs' logical date: `airflow dags test` gives a run the 24 hours before it as its
# data interval, as a scheduled run's; the stand-in's failures (2 to 20 hours before it
# started) fall into it.
LOGICAL_DATE = pendulum.now("UTC").replace(microsecond=0)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, lookertest, image):
    # This night's batch ran: a run due at the runs' own logical date, and one due a few
    # minutes before it, so that a window ending just after midnight (Asia/Tokyo) has its
    # night's batch too.
    return make_airflow(
        tmp_path_factory.mktemp("airflow"),
        lookertest_url=lookertest["url"],
        image=image,
        batch_dates=[LOGICAL_DATE.subtract(minutes=5), LOGICAL_DATE],
    )


def test_docker_dag_end_to_end(podman, airflow, lookertest, tmp_path):
    assert reruns(lookertest["url"]) == {}
    # The container's window is the data interval less the margin for System Activity's lag.
    logical_date = LOGICAL_DATE
    interval = [logical_date.subtract(hours=24).isoformat(), logical_date.isoformat()]
    since, until = rfc3339(logical_date - WINDOW - ACTIVITY_MARGIN), rfc3339(logical_date - ACTIVITY_MARGIN)

    def diag(output):
        return f"\n--- airflow dags test\n{output}\n--- lookertest\n{lookertest['log'].read_text()}"

    # 1. A plan needs a person: the container task succeeds and its XCom is the summary;
    #    check_summary fails the run, naming the plan and why.
    with podman_service(
        podman, tmp_path, "permanent", container_env=[f"RERUN_PERMANENT_PATTERN={PERMANENT_PATTERN}"]
    ) as docker_host:
        output, result = airflow.dags_test(DAG_ID, logical_date, docker_host=docker_host)
    assert result["states"] == {
        "check_params": "success",
        "wait_for_nightly_batch": "success",
        "rerun_failed_deliveries": "success",
        "check_summary": "failed",
    }, diag(output)
    assert result["state"] == "failed"
    assert result["data_interval"] == interval, result
    summary = result["xcom"]["rerun_failed_deliveries"]
    print("XCom, run that needs a person:", json.dumps(summary))
    assert isinstance(summary, dict), summary
    assert summary["window"] == {"since": since, "until": until}, summary
    assert summary["exit_code"] == 1, summary
    assert sorted(r["plan_id"] for r in summary["rerun"]) == ["101", "106"], summary
    assert [(p["plan_id"], p["reason"]) for p in summary["needs_person"]] == [("105", "permanent")], summary
    assert set(result["xcom"]) == {"wait_for_nightly_batch", "rerun_failed_deliveries"}
    assert "needs a person: plan 105 (Inventory), owner analyst@example.com: permanent" in output, diag(output)
    assert "AirflowFailException" in output, diag(output)
    assert reruns(lookertest["url"]) == {"101": 1, "106": 1}
    # The secret reached the container through private_environment and no log line.
    assert CLIENT_SECRET not in output

    # 2. The same run, cleared and run again once the pattern is gone: plan 105 is re-run,
    #    plans 101 and 106 are not sent again, and every task succeeds.
    with podman_service(podman, tmp_path, "plain") as docker_host:
        output, result = airflow.dags_test(DAG_ID, logical_date, docker_host=docker_host)
        assert result["states"] == dict.fromkeys(
            ["check_params", "wait_for_nightly_batch", "rerun_failed_deliveries", "check_summary"], "success"
        ), diag(output)
        assert result["state"] == "success"
        summary = result["xcom"]["rerun_failed_deliveries"]
        print("XCom, clean run:", json.dumps(summary))
        assert isinstance(summary, dict), summary
        assert summary["exit_code"] == 0, summary
        assert [(r["plan_id"], r["outcome"]) for r in summary["rerun"]] == [("105", "delivered")], summary
        assert {s["plan_id"]: s["reason"] for s in summary["skipped"]} == {
            "101": "already_rerun",
            "102": "later_success",
            "103": "already_rerun",
            "106": "already_rerun",
        }, summary
        assert summary["needs_person"] == [] and summary["failed"] == [], summary
        assert reruns(lookertest["url"]) == {"101": 1, "105": 1, "106": 1}

        # 3. Another DAG run over the same window (given as params, used as they are):
        #    nothing is sent twice.
        output, result = airflow.dags_test(
            DAG_ID, logical_date.add(minutes=1), conf={"since": since, "until": until}, docker_host=docker_host
        )
    assert result["state"] == "success", diag(output)
    summary = result["xcom"]["rerun_failed_deliveries"]
    assert summary["window"] == {"since": since, "until": until}, summary
    assert summary["rerun"] == [] and summary["exit_code"] == 0, summary
    assert reruns(lookertest["url"]) == {"101": 1, "105": 1, "106": 1}
