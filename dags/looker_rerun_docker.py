"""Re-run failed Looker scheduled deliveries with the looker-rerun container, on Docker.

For Airflow deployments without Kubernetes: the same schedule, window and batch
dependency as ``looker_rerun`` (see looker_rerun_common.py), run with DockerOperator on
the worker's Docker engine (``DOCKER_HOST``, default unix:///var/run/docker.sock).

Credentials: the Airflow Connection ``looker_rerun`` (any type; login = API3 client id,
password = client secret, host = base URL, used when the Variable
``looker_rerun_base_url`` is not set). They are read when the task runs and handed to
the container as DockerOperator's private environment, which it neither templates nor
shows in the UI; Airflow masks the password in the task log.

Network: the Airflow Variable ``looker_rerun_docker_network`` is the container's
``network_mode``; default ``bridge``. The deployment may set ``host`` there, when Looker
(or a proxy) is reachable only from the worker's own network. A triggered run may pick
another with the ``docker_network`` param, but only a named network listed in the
Variable ``looker_rerun_docker_networks`` (comma-separated); never ``host``, ``none`` or
``container:<id>``, which would hand the credentials to another network namespace.
check_params refuses any other before anything runs.

The XCom is the binary's one-line JSON summary, as a dict, picked out of the container's
output (see ``summary_from_output``), also when the container fails (exit 3 or 4 leave
a summary). The container exits 0 when the run needs a person
(``RERUN_NEEDS_PERSON_EXIT_CODE=0``); the ``check_summary`` task, which runs whatever
happened, fails the run from the summary. See looker_rerun_common.py.
"""

from __future__ import annotations

import json
import re

from docker.types import Mount

from airflow.providers.docker.exceptions import DockerContainerFailedException
from airflow.providers.docker.operators.docker import DockerOperator
from airflow.sdk import DAG, Connection, Param, Variable, task

from looker_rerun_common import (
    EXECUTION_TIMEOUT,
    IMAGE_TEMPLATE,
    RESULT_FILE,
    RESULT_TMPFS_BYTES,
    RETRIES,
    RETRY_DELAY,
    SCHEDULE,
    START_DATE,
    USER_DEFINED_MACROS,
    AlertOnFailure,
    check_summary,
    dag_params,
    params_problems,
    refuse,
    rerun_env,
    wait_for_nightly_batch_task,
)

LOOKER_CONN_ID = "looker_rerun"

# The container's network: the deployment's (Variable, else Docker's default network),
# or a param naming one of the networks the deployment allows (checked by check_params).
DEFAULT_NETWORK = "bridge"
VAR_NETWORK = "looker_rerun_docker_network"
VAR_ALLOWED_NETWORKS = "looker_rerun_docker_networks"
NETWORK_TEMPLATE = "{{ params.docker_network or var.value.get('" + VAR_NETWORK + "', '" + DEFAULT_NETWORK + "') }}"
# A Docker network name (no colon: not container:<id>), and not one of the modes that
# are no network of their own. Checked by Airflow when the run is created.
NETWORK_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
NOT_A_NETWORK = ["host", "none", "default"]


def network_problems(requested: str | None) -> list[str]:
    """Why the docker_network param may not be used, or nothing: it must name a network
    the deployment lists in VAR_ALLOWED_NETWORKS, or its default network."""
    if not requested:
        return []
    default = Variable.get(VAR_NETWORK, default=DEFAULT_NETWORK)
    allowed = [n.strip() for n in Variable.get(VAR_ALLOWED_NETWORKS, default="").split(",") if n.strip()]
    if requested == default or (requested in allowed and requested not in NOT_A_NETWORK):
        return []
    listed = ", ".join(allowed) if allowed else "none listed"
    return [
        f"docker_network {requested!r} is not a network this deployment allows "
        f"(the Airflow Variable {VAR_ALLOWED_NETWORKS}: {listed}; default {default})"
    ]


@task(task_id="check_params", retries=0)
def check_docker_params(**context) -> None:
    """check_params, and the docker_network param against the networks the deployment allows."""
    refuse(params_problems(context) + network_problems(context["params"].get("docker_network")))


def summary_from_output(lines: list[str]) -> dict | None:
    """The binary's summary among the container's output lines, or None.

    DockerOperator reads stdout and stderr as one stream. The binary writes its last log
    line ("looker-rerun done", stderr) after the summary (stdout), but the container
    runtime reads the two pipes apart and may hand them on in the other order, so the
    summary need not be the last line; and a long summary (hundreds of plans) reaches
    the stream in pieces, between which a log line can land. With LOG_FORMAT=json every
    log line is a JSON object starting {"level": (a key the summary never has; inside
    its strings a quote is escaped), so those are cut out and the pieces joined again.
    The summary is the last JSON object with a "window" and no "level".
    """
    for line in reversed(lines):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and "window" in value and "level" not in value:
            return value
    text = "\n".join(lines)
    start = text.rfind('{"window":')
    if start < 0:
        return None
    joined = re.sub(r'\{"level":[^\n]*(\n|$)', "", text[start:]).replace("\n", "")
    try:
        value, _ = json.JSONDecoder().raw_decode(joined)
    except ValueError:
        return None
    return value if isinstance(value, dict) and "window" in value else None


class LookerRerunDockerOperator(DockerOperator):
    """DockerOperator that puts the Looker credentials of an Airflow Connection into its
    private environment when the task runs (never at parse time, never templated), and
    returns the summary as a dict, the XCom KubernetesPodOperator would push.

    Why not DockerOperator's ``private_environment`` parameter: it takes the values when
    the DAG file is parsed, on the DAG processor and every worker, so the Connection (and
    its secret) would be read on every parse, and a new secret would need a re-parse. The
    provider keeps that parameter as ``_private_environment`` and reads it only when it
    creates the container; execute fills it just before. tests/dags/test_e2e_docker.py
    checks, through a real container, that the credentials arrive and are never logged.
    """

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
        # The connection's host is a fallback for the base URL (the Variable wins).
        if conn.host and not self.environment.get("LOOKERSDK_BASE_URL"):
            private["LOOKERSDK_BASE_URL"] = conn.host
        self._private_environment = {**self._private_environment, **private}
        try:
            lines = super().execute(context) or []
        except DockerContainerFailedException as err:
            # Exit 2, 3 or 4 fails the task. The summary the binary wrote (3: could not
            # list the failures; 4: stopped at RERUN_DEADLINE) still becomes the XCom, as
            # KubernetesPodOperator pushes it on failure, for check_summary to name.
            summary = summary_from_output([l.decode() if isinstance(l, bytes) else l for l in err.logs or []])
            if summary is not None:
                context["ti"].xcom_push(key="return_value", value=summary)
            raise
        summary = summary_from_output(lines)
        if summary is None:
            # check_summary fails on the missing XCom; the output is in the task log above.
            self.log.error("no looker-rerun summary among the container's %d output lines", len(lines))
        return summary


def docker_kwargs() -> dict:
    """LookerRerunDockerOperator arguments of the re-run task (everything but the environment)."""
    return dict(
        image=IMAGE_TEMPLATE,
        # Every output line, for execute to pick the summary from.
        do_xcom_push=True,
        xcom_all=True,
        # The image's own numeric user (FROM scratch: there is no passwd file to name one
        # in), no extra capabilities; 64 MB is 3x the measured footprint, plus the tmpfs.
        user="65532:65532",
        privileged=False,
        mem_limit="64m",
        network_mode=NETWORK_TEMPLATE,
        # The binary needs no /tmp/airflow bind mount (and it breaks with a remote engine).
        mount_tmp_dir=False,
        # A tmpfs where the binary's RERUN_RESULT_FILE goes, sized for the largest summary
        # (see RESULT_TMPFS_BYTES); the root stays untouched.
        # Mode 1777 like /tmp: Docker Engine mounts a tmpfs 1777 anyway, podman's
        # Docker-compatible API mounts it 000 unless told, and uid 65532 must write there.
        mounts=[
            Mount(
                target=RESULT_FILE.rsplit("/", 1)[0],
                source=None,
                type="tmpfs",
                tmpfs_size=RESULT_TMPFS_BYTES,
                tmpfs_mode=0o1777,
            )
        ],
        auto_remove="success",
        retries=RETRIES,
        retry_delay=RETRY_DELAY,
        execution_timeout=EXECUTION_TIMEOUT,
    )


def docker_params() -> dict[str, Param]:
    """The params of the Docker DAG: dag_params and the container's network."""
    return {
        **dag_params(),
        "docker_network": Param(
            None,
            type=["null", "string"],
            pattern=NETWORK_NAME_PATTERN,
            **{"not": {"enum": NOT_A_NETWORK}},
            description=f"Docker network of the container: one the Airflow Variable {VAR_ALLOWED_NETWORKS} "
            f"lists (never host, none or container:<id>). Empty: the Variable {VAR_NETWORK}, else {DEFAULT_NETWORK}.",
        ),
    }


with DAG(
    dag_id="looker_rerun_docker",
    description="Re-run Looker scheduled deliveries that failed since the nightly batch (Docker)",
    schedule=SCHEDULE,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    params=docker_params(),
    user_defined_macros=USER_DEFINED_MACROS,
    # Email and Slack alerts when a task fails: see AlertOnFailure.
    default_args={"on_failure_callback": AlertOnFailure(output_summary=summary_from_output)},
    tags=["looker"],
    doc_md=__doc__,
):
    rerun = LookerRerunDockerOperator(task_id="rerun_failed_deliveries", environment=rerun_env(), **docker_kwargs())
    check_docker_params() >> wait_for_nightly_batch_task() >> rerun >> check_summary()
