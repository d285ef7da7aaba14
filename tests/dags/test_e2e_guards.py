"""End to end: what Airflow refuses before anything runs, a run without a logical date,
and a check that names every instance, with the real DockerOperator on podman.

The set-up is test_e2e_docker.py's (e2e_airflow.py): Airflow 3.3 in a temporary home,
the Docker DAG as a deployment copies it, the image under test, a stand-in Looker of
this module's own (demo seed), the batch published for this night. The tests share the
stand-in and run in file order: the refusals re-run nothing, the instance check re-runs
plans 101 and 106, the run without a logical date re-runs plan 105.

Needs: podman (scripts/podman-setup.sh), the image (IMAGE, default looker-rerun:test), Go.
A missing piece fails the test; DAG_E2E=0 skips it on purpose.
"""

from __future__ import annotations

import json

import pendulum
import pytest

from conftest import CLIENT_SECRET, DAGS, REPO, e2e, reruns
from e2e_airflow import make_airflow, podman_service, rfc3339
from looker_rerun_common import ACTIVITY_MARGIN, WINDOW

pytestmark = e2e

DAG_ID = "looker_rerun_docker"
LOGICAL_DATE = pendulum.now("UTC").replace(microsecond=0)
# The window of a run at LOGICAL_DATE, as the scheduled run's container would get it.
SINCE = rfc3339(LOGICAL_DATE - WINDOW - ACTIVITY_MARGIN)
UNTIL = rfc3339(LOGICAL_DATE - ACTIVITY_MARGIN)
TASKS = ["check_params", "wait_for_nightly_batch", "rerun_failed_deliveries", "check_summary"]


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, lookertest, image):
    files = {name: (DAGS / name).read_text() for name in ["looker_rerun_docker.py", "looker_rerun_common.py"]}
    # The test DAG of looker_rerun_multi's shape, in the Docker DAG's module (see its doc).
    files["looker_rerun_docker.py"] += "\n\n" + (REPO / "tests/dags/e2e_dags/instances_dag.py").read_text()
    return make_airflow(
        tmp_path_factory.mktemp("airflow"),
        lookertest_url=lookertest["url"],
        image=image,
        files=files,
        batch_dates=[LOGICAL_DATE.subtract(minutes=5), LOGICAL_DATE],
        variables={"looker_rerun_docker_networks": "looker-net"},
    )


@pytest.fixture(scope="module")
def docker_host(podman, tmp_path_factory):
    with podman_service(podman, tmp_path_factory.mktemp("podman"), "guards") as url:
        yield url


@pytest.mark.parametrize(
    ("conf", "why"),
    [
        pytest.param(
            {"image": "docker.io/attacker/looker-rerun:latest"},
            "'image' is not a param of this DAG (the image is the deployment's: the Airflow Variable looker_rerun_image)",
            id="a foreign image",
        ),
        pytest.param(
            {"looker_base_url": "https://collector.attacker.example"},
            "'looker_base_url' is not a param of this DAG",
            id="a foreign base URL",
        ),
        pytest.param(
            {"docker_network": "attacker-net"},
            "docker_network 'attacker-net' is not a network this deployment allows "
            "(the Airflow Variable looker_rerun_docker_networks: looker-net; default host)",
            id="a network the deployment does not list",
        ),
        pytest.param(
            {"since": "2026-11-28T01:00:00Z", "until": "2026-11-20T01:00:00Z"},
            "since (2026-11-28T01:00:00Z) must be before until (2026-11-20T01:00:00Z)",
            id="since after until",
        ),
    ],
)
def test_refused_before_anything_runs(airflow, lookertest, docker_host, conf, why):
    # Each a run of its own (a logical date of its own).
    logical_date = LOGICAL_DATE.add(seconds=len(why))
    output, result = airflow.dags_test(DAG_ID, logical_date, conf=conf, docker_host=docker_host)

    # check_params fails; the sensor never waits, the container never starts; the check
    # says there is no summary and why.
    assert result["states"] == {
        "check_params": "failed",
        "wait_for_nightly_batch": "upstream_failed",
        "rerun_failed_deliveries": "upstream_failed",
        "check_summary": "failed",
    }, output
    assert result["state"] == "failed"
    assert "this run was refused before it started:" in output, output
    assert why in output, output
    assert "the re-run left no summary: rerun_failed_deliveries ended upstream_failed" in output, output
    assert reruns(lookertest["url"]) == {}


@pytest.mark.parametrize(
    ("conf", "param", "example"),
    [
        pytest.param({"since": "2026-11-27"}, "since", "2026-11-27T01:00:00Z", id="a date for a time"),
        pytest.param({"until": "yesterday"}, "until", "2026-11-27T01:00:00Z", id="a word for a time"),
        pytest.param({"docker_network": "host"}, "docker_network", "'host' should not be valid", id="host"),
        pytest.param(
            {"docker_network": "container:looker-proxy"}, "docker_network", "does not match", id="container:"
        ),
    ],
)
def test_refused_when_the_run_is_created(airflow, lookertest, conf, param, example):
    # `airflow dags trigger` (the CLI an operator uses) against the serialized DAG: Airflow
    # checks each param's schema as it creates the run, and creates none.
    airflow("dags", "reserialize")
    before = run_ids(airflow)
    proc = airflow("dags", "trigger", DAG_ID, "--conf", json.dumps(conf), check=False)
    output = proc.stdout + proc.stderr

    assert proc.returncode != 0, output
    assert f"Invalid input for param {param}:" in output, output
    assert example in output, output
    assert run_ids(airflow) == before
    assert reruns(lookertest["url"]) == {}


def run_ids(airflow):
    """The DAG's runs, as `airflow dags list-runs` lists them (its JSON is the last line)."""
    lines = airflow("dags", "list-runs", DAG_ID, "--output", "json").stdout.strip().splitlines()
    return sorted(r["run_id"] for r in json.loads(lines[-1]))


def test_instance_check_names_the_failed_one_and_the_one_that_needs_a_person(airflow, lookertest, docker_host):
    # looker_rerun_multi's shape on Docker: instance "broken" exits 2 (no summary), "prod"
    # needs a person for plan 105. The check runs after both and names both.
    dag_id = "looker_rerun_docker_instances"
    output, result = airflow.dags_test(dag_id, LOGICAL_DATE, docker_host=docker_host)

    assert result["states"] == {
        "check_params": "success",
        "wait_for_nightly_batch": "success",
        "rerun_failed_deliveries[0]": "failed",
        "rerun_failed_deliveries[1]": "success",
        "check_summaries": "failed",
    }, output
    summary = result["xcom"]["rerun_failed_deliveries[1]"]
    assert [(p["plan_id"], p["reason"]) for p in summary["needs_person"]] == [("105", "permanent")], summary
    assert "broken: the re-run left no summary: rerun_failed_deliveries [broken] ended failed" in output, output
    assert "prod: looker-rerun needs a person (exit_code 1):" in output, output
    assert "needs a person: plan 105 (Inventory), owner analyst@example.com: permanent" in output, output
    assert reruns(lookertest["url"]) == {"101": 1, "106": 1}
    assert CLIENT_SECRET not in output


def test_manual_run_without_a_logical_date(airflow, lookertest, docker_host):
    # As `airflow dags trigger` without --logical-date makes it: no data interval.
    # Without a window it is refused before anything runs...
    output, result = airflow.dag_test(DAG_ID, docker_host=docker_host)
    assert result["logical_date"] is None and result["data_interval"] is None, result
    assert result["states"]["check_params"] == "failed", output
    assert result["states"]["rerun_failed_deliveries"] == "upstream_failed", output
    assert "the run has no data interval (triggered without a logical date): give both since and until" in output

    # ...with one, every task works from it: the sensor finds the batch of the night the
    # window ends in, the container gets the window as given.
    output, result = airflow.dag_test(DAG_ID, conf={"since": SINCE, "until": UNTIL}, docker_host=docker_host)
    assert result["logical_date"] is None, result
    assert result["states"] == dict.fromkeys(TASKS, "success"), output
    summary = result["xcom"]["rerun_failed_deliveries"]
    assert summary["window"] == {"since": SINCE, "until": UNTIL}, summary
    assert summary["exit_code"] == 0, summary
    assert reruns(lookertest["url"]) == {"101": 1, "105": 1, "106": 1}
