"""Airflow end to end on podman, shared by the test_e2e_*.py modules that run a DAG.

Airflow 3.3 runs the Docker DAG (`airflow dags test`, or ``DAG.test`` for a run without a
logical date) in a temporary AIRFLOW_HOME with SQLite, from a dags folder holding what a
Docker-only deployment copies plus the stand-in batch DAG (e2e_dags/nightly_batch.py).
The DockerOperator talks to `podman system service` on a socket of the test's own
(DOCKER_HOST), which runs the image under test against the stand-in Looker on 127.0.0.1.
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

from conftest import CLIENT_ID, CLIENT_SECRET, DAGS, REPO, run, stop

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

# Reads a DAG run's task states and XComs from the metadata database; the run is named
# by its run id or its logical date.
RESULT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import pendulum
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dag_id, which = sys.argv[1], sys.argv[2]
    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == dag_id)
        dr = runs.filter(DagRun.run_id == which).one_or_none()
        if dr is None:
            dr = runs.filter(DagRun.logical_date == pendulum.parse(which)).one()
        rows = session.query(XComModel).filter(
            XComModel.dag_id == dag_id, XComModel.run_id == dr.run_id, XComModel.key == "return_value"
        )
        interval = [dr.data_interval_start, dr.data_interval_end]
        print("RUN-RESULT " + json.dumps({
            "state": str(dr.state),
            "logical_date": dr.logical_date and dr.logical_date.isoformat(),
            "data_interval": None if None in interval else [t.isoformat() for t in interval],
            "states": {
                ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): str(ti.state)
                for ti in dr.get_task_instances(session=session)
            },
            "xcom": {
                row.task_id + (f"[{row.map_index}]" if row.map_index >= 0 else ""): XComModel.deserialize_value(row)
                for row in rows
            },
        }))
    """
)

# DAG.test with a given logical date (or none: a manual run as `airflow dags trigger`
# without --logical-date makes it, with no data interval) and run_after (when the run was
# due; `airflow dags test` always takes the wall clock). Prints its run id.
TEST_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import pendulum
    from airflow.dag_processing.dagbag import BundleDagBag

    dags = os.environ["AIRFLOW__CORE__DAGS_FOLDER"]
    dag_id, conf, logical_date, run_after = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
    bag = BundleDagBag(dag_folder=dags, bundle_path=dags, bundle_name="dags-folder")
    dr = bag.dags[dag_id].test(
        logical_date=None if logical_date == "none" else pendulum.parse(logical_date),
        run_after=None if run_after == "now" else pendulum.parse(run_after),
        run_conf=conf,
    )
    print("RUN-ID " + dr.run_id)
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

    def result(self, dag_id, which):
        """The run's result (state, data_interval, states, xcom); which: run id or logical date."""
        proc = run(sys.executable, "-c", RESULT_SCRIPT, dag_id, which, env=self.env)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RUN-RESULT ")]
        assert len(lines) == 1, proc.stdout + proc.stderr
        return json.loads(lines[0].removeprefix("RUN-RESULT "))

    def dags_test(self, dag_id, logical_date, *, conf=None, docker_host=None):
        """`airflow dags test`; returns (its output, the run's result: state, states, xcom)."""
        proc = self.dags_test_proc(dag_id, logical_date, conf=conf, docker_host=docker_host)
        output = proc.stdout + proc.stderr
        return output, self.result(dag_id, logical_date.isoformat())

    def dags_test_proc(self, dag_id, logical_date, *, conf=None, docker_host=None):
        """`airflow dags test`, its process (exit code, output) only."""
        args = ["dags", "test", dag_id, logical_date.isoformat()]
        if conf:
            args += ["--conf", json.dumps(conf)]
        return self(*args, docker_host=docker_host, check=False)

    def dag_test(self, dag_id, *, logical_date=None, run_after=None, conf=None, docker_host=None):
        """DAG.test: without logical_date a run with no data interval, as a manual trigger
        without one makes; returns (output, result)."""
        env = dict(self.env, DOCKER_HOST=docker_host) if docker_host else self.env
        args = [
            dag_id,
            json.dumps(conf or {}),
            logical_date.isoformat() if logical_date else "none",
            run_after.isoformat() if run_after else "now",
        ]
        proc = run(sys.executable, "-c", TEST_SCRIPT, *args, env=env, check=False)
        output = proc.stdout + proc.stderr
        ids = [line for line in proc.stdout.splitlines() if line.startswith("RUN-ID ")]
        assert len(ids) == 1, output
        return output, self.result(dag_id, ids[0].removeprefix("RUN-ID "))


def make_airflow(tmp, *, lookertest_url, image, batch_dates, files=None, variables=None):
    """An Airflow home whose dags folder holds ``files`` ({name: text}; default: the
    Docker DAG's two files as shipped) and the stand-in batch DAG, with the Connection
    looker_rerun and the Variables a Docker deployment sets (base URL, image, network host,
    for the stand-in on the worker's loopback; more from ``variables``). The batch DAG is
    run once, due at each of ``batch_dates``, so its asset has an event for those nights."""
    dags = tmp / "dags"
    dags.mkdir()
    files = files or {name: (DAGS / name).read_text() for name in ["looker_rerun_docker.py", "looker_rerun_common.py"]}
    for name, text in files.items():
        (dags / name).write_text(text)
    shutil.copy(REPO / "tests/dags/e2e_dags/nightly_batch.py", dags)
    af = Airflow(tmp / "home", dags)
    af("db", "migrate")
    values = {
        "looker_rerun_base_url": lookertest_url,
        "looker_rerun_image": image,
        # The stand-in listens on the worker's loopback.
        "looker_rerun_docker_network": "host",
        **(variables or {}),
    }
    (tmp / "variables.json").write_text(json.dumps(values))
    af("variables", "import", str(tmp / "variables.json"))
    af(
        "connections", "add", "looker_rerun",
        "--conn-type", "generic", "--conn-login", CLIENT_ID, "--conn-password", CLIENT_SECRET,
    )  # fmt: skip
    for when in batch_dates:
        _, batch = af.dag_test("nightly_batch", logical_date=when, run_after=when)
        assert batch["states"] == {"publish": "success"}, batch
    return af
