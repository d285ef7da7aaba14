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

import contextlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pendulum
import pytest

from conftest import CLIENT_ID, CLIENT_SECRET, DAGS, REPO, e2e, reruns, run, stop
from looker_rerun_common import ACTIVITY_MARGIN, WINDOW

pytestmark = e2e

DAG_ID = "looker_rerun_docker"
# The stand-in's demo seed fails plan 105 with this detail; as a permanent pattern it
# makes the plan one that needs a person.
PERMANENT_PATTERN = "Webhook answered 502"

# The engine settings of scripts/podman-setup.sh: in podman 4.3 a CONTAINERS_CONF file
# replaces the machine's containers.conf and its drop-ins, so it repeats them.
CONTAINERS_CONF = """\
[containers]
default_ulimits = []
env = {env}

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""

# Reads a DAG run's task states and XComs from the metadata database.
RESULT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import pendulum
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dag_id, logical_date = sys.argv[1], pendulum.parse(sys.argv[2])
    with create_session() as session:
        dr = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.logical_date == logical_date).one()
        rows = session.query(XComModel).filter(
            XComModel.dag_id == dag_id, XComModel.run_id == dr.run_id, XComModel.key == "return_value"
        )
        print("RUN-RESULT " + json.dumps({
            "state": str(dr.state),
            "data_interval": [dr.data_interval_start.isoformat(), dr.data_interval_end.isoformat()],
            "states": {ti.task_id: str(ti.state) for ti in dr.get_task_instances(session=session)},
            "xcom": {row.task_id: XComModel.deserialize_value(row) for row in rows},
        }))
    """
)


def rfc3339(t):
    return t.in_timezone("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


@contextlib.contextmanager
def podman_service(podman, tmp, name, container_env=()):
    """`podman system service` on a socket in tmp; yields its DOCKER_HOST URL.
    container_env: NAME=value strings podman adds to every container it creates."""
    sock = tmp / f"{name}.sock"
    env = os.environ.copy()
    if container_env:
        conf = tmp / f"{name}.containers.conf"
        conf.write_text(CONTAINERS_CONF.format(env=json.dumps(list(container_env))))
        env["CONTAINERS_CONF"] = str(conf)
    log_path = tmp / f"{name}.service.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [podman, "system", "service", "--time=0", f"unix://{sock}"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        import docker

        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"podman system service exited: {log_path.read_text()}"
            try:
                if sock.exists() and docker.APIClient(base_url=f"unix://{sock}").ping():
                    break
            except docker.errors.DockerException:
                pass
            assert time.monotonic() < deadline, f"podman system service not answering: {log_path.read_text()}"
            time.sleep(0.2)
        yield f"unix://{sock}"
    finally:
        stop(proc, timeout=15)


class Airflow:
    """The airflow CLI of this venv, on a throw-away AIRFLOW_HOME."""

    def __init__(self, home, dags):
        self.cli = str(shutil.which("airflow", path=os.path.dirname(sys.executable)))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DOCKER_"))}
        self.env.update(
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__DAGS_FOLDER=str(dags),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        )

    def __call__(self, *args, docker_host=None, check=True, timeout=300):
        env = dict(self.env, DOCKER_HOST=docker_host) if docker_host else self.env
        return run(self.cli, *args, env=env, check=check, timeout=timeout)

    def dags_test(self, dag_id, logical_date, *, conf=None, docker_host=None):
        """`airflow dags test`; returns (its output, the run's result: state, states, xcom)."""
        args = ["dags", "test", dag_id, logical_date.isoformat()]
        if conf:
            args += ["--conf", json.dumps(conf)]
        proc = self(*args, docker_host=docker_host, check=False)
        output = proc.stdout + proc.stderr
        result = run(sys.executable, "-c", RESULT_SCRIPT, dag_id, logical_date.isoformat(), env=self.env)
        lines = [line for line in result.stdout.splitlines() if line.startswith("RUN-RESULT ")]
        assert len(lines) == 1, result.stdout + result.stderr + output
        return output, json.loads(lines[0].removeprefix("RUN-RESULT "))


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, lookertest, image):
    tmp = tmp_path_factory.mktemp("airflow")
    dags = tmp / "dags"
    dags.mkdir()
    # What a Docker-only deployment copies, and the batch DAG that publishes the asset.
    for f in ["looker_rerun_docker.py", "looker_rerun_common.py"]:
        shutil.copy(DAGS / f, dags)
    shutil.copy(REPO / "tests/dags/e2e_dags/nightly_batch.py", dags)
    af = Airflow(tmp / "home", dags)
    af("db", "migrate")
    variables = tmp / "variables.json"
    variables.write_text(
        json.dumps(
            {
                "looker_rerun_base_url": lookertest["url"],
                "looker_rerun_image": image,
                # The stand-in listens on the worker's loopback.
                "looker_rerun_docker_network": "host",
            }
        )
    )
    af("variables", "import", str(variables))
    af(
        "connections", "add", "looker_rerun",
        "--conn-type", "generic", "--conn-login", CLIENT_ID, "--conn-password", CLIENT_SECRET,
    )  # fmt: skip
    _, batch = af.dags_test("nightly_batch", pendulum.now("UTC"))
    assert batch["states"] == {"publish": "success"}, batch
    return af


def test_docker_dag_end_to_end(podman, airflow, lookertest, tmp_path):
    assert reruns(lookertest["url"]) == {}
    # `airflow dags test` gives the run the data interval of one triggered at its logical
    # date: the 24 hours before it, as a scheduled run's. The container's window is that,
    # less the margin for System Activity's lag; the stand-in's failures (2 to 20 hours
    # before it started) fall into it.
    logical_date = pendulum.now("UTC").replace(microsecond=0)
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
    assert "check_summary" not in result["xcom"]
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
            ["wait_for_nightly_batch", "rerun_failed_deliveries", "check_summary"], "success"
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
