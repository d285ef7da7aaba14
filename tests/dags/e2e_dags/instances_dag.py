"""A test DAG for tests/dags/test_e2e_guards.py: looker_rerun_multi's shape (one mapped
re-run task per Looker instance, then check_summaries over them, whatever became of
each) built from the Docker DAG's operator, so that Airflow can run it on podman.

The test appends this file to looker_rerun_docker.py (whose LookerRerunDockerOperator,
docker_kwargs, docker_params and check_docker_params it uses): importing that module from a DAG file of its own would
define the looker_rerun_docker DAG a second time in the same DagBag.

Two instances against the stand-in: ``broken`` has a setting the binary refuses (exit 2,
no summary: its task fails); ``prod`` makes the stand-in's plan 105 failure permanent,
so it needs a person (exit 0 with RERUN_NEEDS_PERSON_EXIT_CODE=0, summary exit_code 1).
"""

from airflow.sdk import DAG

from looker_rerun_common import (
    RERUN_TASK_ID,
    SCHEDULE,
    START_DATE,
    USER_DEFINED_MACROS,
    check_summaries,
    rerun_env,
    wait_for_nightly_batch_task,
)

INSTANCES = [
    # LOOKERSDK_TIMEOUT must be 1 to 3600: the binary exits 2 before it does anything.
    {"name": "broken", "environment": {**rerun_env(), "LOOKERSDK_TIMEOUT": "0"}},
    {"name": "prod", "environment": {**rerun_env(), "RERUN_PERMANENT_PATTERN": "Webhook answered 502"}},
]

with DAG(
    dag_id="looker_rerun_docker_instances",
    schedule=SCHEDULE,
    start_date=START_DATE,
    catchup=False,
    params=docker_params(),
    user_defined_macros=USER_DEFINED_MACROS,
    tags=["test"],
):
    # No retry: `airflow dags test` would wait out the retry delay of the failing instance.
    kwargs = {**docker_kwargs(), "retries": 0}
    rerun_each = LookerRerunDockerOperator.partial(
        task_id=RERUN_TASK_ID, **kwargs
    ).expand_kwargs([{"environment": i["environment"]} for i in INSTANCES])
    check_docker_params() >> wait_for_nightly_batch_task() >> rerun_each
    rerun_each >> check_summaries(names=[i["name"] for i in INSTANCES])
