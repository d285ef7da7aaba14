"""Re-run failed Looker scheduled deliveries with the looker-rerun container, on Docker.

For Airflow deployments without Kubernetes: the same schedule, window and batch
dependency as ``looker_rerun`` (see looker_rerun_common.py), run with DockerOperator on
the worker's Docker engine (``DOCKER_HOST``, default unix:///var/run/docker.sock).

Credentials: the Airflow Connection ``looker_rerun`` (any type; login = API3 client id,
password = client secret, host = base URL, optional). They are read when the task runs
and handed to the container through ``private_environment``, which DockerOperator neither
templates nor shows in the UI; Airflow masks the password in the task log.

Network: the Airflow Variable ``looker_rerun_docker_network`` (or the ``docker_network``
param of a triggered run) is the container's ``network_mode``; default ``bridge``. Use
``host`` when Looker (or a proxy) is reachable only from the worker's own network.

The XCom is the binary's one-line JSON summary, as a dict, picked out of the container's
output (see ``summary_from_output``). The container exits 0 also when the run needs a person
(``RERUN_NEEDS_PERSON_EXIT_CODE=0``), so that XCom exists whatever the outcome; the
``check_summary`` task fails the run from it. See looker_rerun_common.py.
"""

from __future__ import annotations

import json

from docker.types import Mount

from airflow.providers.docker.operators.docker import DockerOperator
from airflow.sdk import DAG, Connection, Param

from looker_rerun_common import (
    EXECUTION_TIMEOUT,
    IMAGE_TEMPLATE,
    RESULT_FILE,
    RETRIES,
    RETRY_DELAY,
    SCHEDULE,
    START_DATE,
    USER_DEFINED_MACROS,
    AlertOnFailure,
    check_summary,
    dag_params,
    rerun_env,
    wait_for_nightly_batch_task,
)

LOOKER_CONN_ID = "looker_rerun"

# The container's network: param, then Variable, then Docker's default network.
DEFAULT_NETWORK = "bridge"
NETWORK_TEMPLATE = (
    "{{ params.docker_network or var.value.get('looker_rerun_docker_network', '" + DEFAULT_NETWORK + "') }}"
)


def summary_from_output(lines: list[str]) -> dict | None:
    """The binary's summary among the container's output lines, or None.

    DockerOperator reads stdout and stderr as one stream. The binary writes its last log
    line ("looker-rerun done", stderr) before the summary (stdout), but the container
    runtime reads the two pipes apart and may hand them on in the other order, so the
    summary need not be the last line. With LOG_FORMAT=json every log line is a JSON object with a "level";
    the summary is the last JSON object with a "window" and no "level".
    """
    for line in reversed(lines):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and "window" in value and "level" not in value:
            return value
    return None


class LookerRerunDockerOperator(DockerOperator):
    """DockerOperator that puts the Looker credentials of an Airflow Connection into
    ``private_environment`` when the task runs (never at parse time, never templated),
    and returns the summary as a dict, the XCom KubernetesPodOperator would push."""

    # network_mode comes from a Variable or param, so it is rendered like the image.
    template_fields = (*DockerOperator.template_fields, "network_mode")

    def __init__(self, *, looker_conn_id: str = LOOKER_CONN_ID, **kwargs):
        super().__init__(**kwargs)
        self.looker_conn_id = looker_conn_id

    def execute(self, context):
        conn = Connection.get(self.looker_conn_id)
        private = {
            "LOOKERSDK_CLIENT_ID": conn.login or "",
            "LOOKERSDK_CLIENT_SECRET": conn.password or "",
        }
        # The connection's host is a fallback for the base URL (param and Variable win).
        if conn.host and not self.environment.get("LOOKERSDK_BASE_URL"):
            private["LOOKERSDK_BASE_URL"] = conn.host
        self._private_environment = {**self._private_environment, **private}
        lines = super().execute(context) or []
        summary = summary_from_output(lines)
        if summary is None:
            # check_summary fails on the missing XCom; the output is in the task log above.
            self.log.error("no looker-rerun summary among the container's %d output lines", len(lines))
        return summary


with DAG(
    dag_id="looker_rerun_docker",
    description="Re-run Looker scheduled deliveries that failed since the nightly batch (Docker)",
    schedule=SCHEDULE,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    params={
        **dag_params(),
        "docker_network": Param(
            None,
            type=["null", "string"],
            description=f"Docker network_mode of the container. Empty: the Airflow Variable "
            f"looker_rerun_docker_network, else {DEFAULT_NETWORK}.",
        ),
    },
    user_defined_macros=USER_DEFINED_MACROS,
    # Email and Slack alerts when a task fails: see AlertOnFailure.
    default_args={"on_failure_callback": AlertOnFailure(output_summary=summary_from_output)},
    tags=["looker"],
    doc_md=__doc__,
):
    rerun = LookerRerunDockerOperator(
        task_id="rerun_failed_deliveries",
        image=IMAGE_TEMPLATE,
        environment=rerun_env(),
        # Every output line, for execute to pick the summary from.
        do_xcom_push=True,
        xcom_all=True,
        # The image's own user, no extra capabilities; 64 MB is 3x the measured footprint.
        user="65532:65532",
        privileged=False,
        mem_limit="64m",
        network_mode=NETWORK_TEMPLATE,
        # The binary needs no /tmp/airflow bind mount (and it breaks with a remote engine).
        mount_tmp_dir=False,
        # A small tmpfs where the binary's RERUN_RESULT_FILE goes; the root stays untouched.
        # Mode 1777 like /tmp: Docker Engine mounts a tmpfs 1777 anyway, podman's
        # Docker-compatible API mounts it 000 unless told, and uid 65532 must write there.
        mounts=[
            Mount(
                target=RESULT_FILE.rsplit("/", 1)[0], source=None, type="tmpfs", tmpfs_size="1m", tmpfs_mode=0o1777
            )
        ],
        auto_remove="success",
        retries=RETRIES,
        retry_delay=RETRY_DELAY,
        execution_timeout=EXECUTION_TIMEOUT,
    )
    wait_for_nightly_batch_task() >> rerun
    check_summary(rerun.output)
