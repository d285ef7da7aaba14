"""Re-run failed Looker scheduled deliveries with the looker-rerun container, on Kubernetes.

Two DAGs:

* ``looker_rerun``: one Looker instance. Base URL from the ``looker_rerun_base_url``
  Variable; credentials from the Kubernetes Secret ``looker-rerun`` (keys ``client_id``
  and ``client_secret``).
* ``looker_rerun_multi``: several Looker instances, one mapped task per entry of
  ``LOOKER_INSTANCES`` below, each with its own base URL and its own Secret.

Both run daily at 10:00 Asia/Tokyo over the 24 hours before (the run's data interval,
10:00-10:00 JST; each run's starts where the previous one's ended), after this night's
batch has published its asset. See looker_rerun_common.py for the reasoning behind the
schedule, the window and the batch dependency.

A triggered run may choose its window (``since``/``until``) and ``dry_run``, nothing
else: the image, the Looker URL and the credentials are the deployment's (Variables and
Secrets), so whoever can trigger a run cannot send the credentials elsewhere or run
other code with them. The first task, ``check_params``, refuses a run that tries, or
whose window cannot work, before the sensor waits or a pod starts.

The container gets the window as RERUN_SINCE/RERUN_UNTIL (RFC 3339, UTC: the data
interval less ACTIVITY_MARGIN, for System Activity's lag, which is also its
RERUN_CONFIRM; or the ``since``/``until`` params of a triggered run, as given), the Looker
credentials as LOOKERSDK_CLIENT_ID/LOOKERSDK_CLIENT_SECRET from a Kubernetes Secret
(secretKeyRef: the values never pass through Airflow, its templates, logs or database),
and writes its one-line JSON summary to /airflow/xcom/return.json, which becomes the
task's XCom (return_value). A run that needs a person exits 0 too
(RERUN_NEEDS_PERSON_EXIT_CODE=0). Exit 2 (bad settings), 3 (could not log in or fetch
the failures) and 4 (stopped at RERUN_DEADLINE) fail the pod task; the operator still
pushes the summary the binary wrote (3 and 4 write one). The ``check_summary`` task runs
whatever happened and fails the run from the summary, naming the plans and why, or says
that there is none and how the re-run task ended.
"""

from __future__ import annotations

from kubernetes.client import models as k8s

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.secret import Secret
from airflow.sdk import DAG

from looker_rerun_common import (
    EXECUTION_TIMEOUT,
    IMAGE_TEMPLATE,
    POD_STARTUP_TIMEOUT,
    RETRIES,
    RETRY_DELAY,
    SCHEDULE,
    START_DATE,
    USER_DEFINED_MACROS,
    AlertOnFailure,
    check_params,
    check_summaries,
    check_summary,
    dag_params,
    rerun_env,
    wait_for_nightly_batch_task,
)

# The Kubernetes Secret with the Looker API3 credentials of the single-instance DAG, in the
# namespace the pods run in (see deploy/k8s/looker-rerun-secret.yaml).
K8S_SECRET_NAME = "looker-rerun"

# Looker instances of looker_rerun_multi: one mapped task each. ``name`` labels the mapped
# task and its pod; ``secret`` is a Kubernetes Secret with keys client_id and client_secret.
LOOKER_INSTANCES: list[dict[str, str]] = [
    {"name": "prod", "base_url": "https://prod.looker.example.com", "secret": "looker-rerun-prod"},
    {"name": "emea", "base_url": "https://emea.looker.example.com", "secret": "looker-rerun-emea"},
]

RUNAS_ID = 65532  # the image's numeric USER (it is FROM scratch: no user names)


def looker_secrets(secret_name: str) -> list[Secret]:
    """The Looker credentials as env vars from a Kubernetes Secret (secretKeyRef)."""
    return [
        Secret(deploy_type="env", deploy_target="LOOKERSDK_CLIENT_ID", secret=secret_name, key="client_id"),
        Secret(deploy_type="env", deploy_target="LOOKERSDK_CLIENT_SECRET", secret=secret_name, key="client_secret"),
    ]


def restricted_container_security_context() -> k8s.V1SecurityContext:
    """Pod Security Standards "restricted", plus a read-only root filesystem."""
    return k8s.V1SecurityContext(
        run_as_non_root=True,
        run_as_user=RUNAS_ID,
        run_as_group=RUNAS_ID,
        read_only_root_filesystem=True,
        allow_privilege_escalation=False,
        capabilities=k8s.V1Capabilities(drop=["ALL"]),
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )


def pod_kwargs() -> dict:
    """KubernetesPodOperator arguments shared by both DAGs (everything but env and secrets)."""
    return dict(
        image=IMAGE_TEMPLATE,
        image_pull_policy="IfNotPresent",
        # The binary reads only its environment; no command or arguments.
        # Measured footprint: < 20 MiB resident, a few ms of CPU between HTTP calls.
        # No CPU limit: it is I/O bound and a limit would only add CFS throttling.
        container_resources=k8s.V1ResourceRequirements(
            requests={"cpu": "10m", "memory": "32Mi"},
            limits={"memory": "64Mi"},
        ),
        security_context=k8s.V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=RUNAS_ID,
            run_as_group=RUNAS_ID,
            fs_group=RUNAS_ID,  # the XCom emptyDir is writable by the container's group
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
        ),
        container_security_context=restricted_container_security_context(),
        # The XCom sidecar (it only sleeps until the operator reads return.json) gets the
        # same treatment, so the pod passes a "restricted" namespace's admission.
        xcom_sidecar_container_security_context=restricted_container_security_context(),
        # The binary talks to Looker only, never to the Kubernetes API.
        automount_service_account_token=False,
        # The summary JSON (last stdout line, also /airflow/xcom/return.json) is the XCom.
        do_xcom_push=True,
        get_logs=True,
        # Keep a failed pod (exit 2, 3 or 4) for `kubectl logs`; delete the others. A run
        # that needs a person exits 0: its log is in the task log, its summary in XCom.
        on_finish_action="delete_succeeded_pod",
        # Kubernetes-side backstop for execution_timeout, in case the worker dies.
        active_deadline_seconds=int(EXECUTION_TIMEOUT.total_seconds()) + 300,
        # Counted in execution_timeout, and in the margin RERUN_DEADLINE leaves before it.
        startup_timeout_seconds=int(POD_STARTUP_TIMEOUT.total_seconds()),
        retries=RETRIES,
        retry_delay=RETRY_DELAY,
        execution_timeout=EXECUTION_TIMEOUT,
    )


with DAG(
    dag_id="looker_rerun",
    description="Re-run Looker scheduled deliveries that failed since the nightly batch",
    schedule=SCHEDULE,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    params=dag_params(),
    user_defined_macros=USER_DEFINED_MACROS,
    # Email and Slack alerts when a task fails: see AlertOnFailure.
    default_args={"on_failure_callback": AlertOnFailure()},
    tags=["looker"],
    doc_md=__doc__,
):
    rerun = KubernetesPodOperator(
        task_id="rerun_failed_deliveries",
        name="looker-rerun",
        env_vars=rerun_env(),
        secrets=looker_secrets(K8S_SECRET_NAME),
        labels={"app.kubernetes.io/name": "looker-rerun"},
        **pod_kwargs(),
    )
    check_params() >> wait_for_nightly_batch_task() >> rerun >> check_summary()


def instance_kwargs(instance: dict[str, str]) -> dict:
    """The per-instance KubernetesPodOperator arguments of one mapped task."""
    return {
        "name": f"looker-rerun-{instance['name']}",
        "env_vars": rerun_env(base_url=instance["base_url"]),
        "secrets": looker_secrets(instance["secret"]),
        "labels": {"app.kubernetes.io/name": "looker-rerun", "looker-instance": instance["name"]},
    }


with DAG(
    dag_id="looker_rerun_multi",
    description="Re-run failed Looker scheduled deliveries on several Looker instances",
    schedule=SCHEDULE,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    params=dag_params(),
    user_defined_macros=USER_DEFINED_MACROS,
    default_args={"on_failure_callback": AlertOnFailure(instances=[i["name"] for i in LOOKER_INSTANCES])},
    tags=["looker"],
    doc_md=__doc__,
):
    rerun_each = KubernetesPodOperator.partial(
        task_id="rerun_failed_deliveries",
        # The instance name instead of 0, 1, ... in the UI.
        map_index_template="{{ task.labels['looker-instance'] }}",
        # One instance failing (exit 1, say) does not stop the others: each is its own
        # mapped task instance, and the run fails if any of them does.
        **pod_kwargs(),
    ).expand_kwargs([instance_kwargs(i) for i in LOOKER_INSTANCES])
    check_params() >> wait_for_nightly_batch_task() >> rerun_each
    # One check over every instance (in LOOKER_INSTANCES order, the map order), whatever
    # became of each: it names the instance of each plan that needs a person, and each
    # instance that left no summary, with its task state.
    rerun_each >> check_summaries(names=[i["name"] for i in LOOKER_INSTANCES])
