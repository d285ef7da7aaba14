"""Render the re-run tasks for a given data interval and check what the container gets.

KubernetesPodOperator: templates rendered as on a worker, then the pod request built
offline (Kubernetes hook patched), and the V1Pod checked. DockerOperator: the rendered
environment, and the private environment filled from the Connection at execute time.
"""

from __future__ import annotations

import json

import pendulum
import pytest

from conftest import build_pod, render, scheduled_interval

# The data interval of the run of 28 Nov 2026 (10:00-10:00 JST), and the window its
# container gets: the same, ACTIVITY_MARGIN (2 minutes) earlier.
WINDOW = {
    "data_interval_start": pendulum.datetime(2026, 11, 27, 1, tz="UTC"),
    "data_interval_end": pendulum.datetime(2026, 11, 28, 1, tz="UTC"),
}
RERUN_SINCE = "2026-11-27T00:58:00Z"
RERUN_UNTIL = "2026-11-28T00:58:00Z"
CREDENTIAL_ENVS = {"LOOKERSDK_CLIENT_ID", "LOOKERSDK_CLIENT_SECRET"}
RESTRICTED = {
    "run_as_non_root": True,
    "run_as_user": 65532,
    "run_as_group": 65532,
    "read_only_root_filesystem": True,
    "allow_privilege_escalation": False,
    "capabilities": {"add": None, "drop": ["ALL"]},
    "seccomp_profile": {"localhost_profile": None, "type": "RuntimeDefault"},
}


def env_of(container):
    return {e.name: e for e in container.env}


def containers_by_name(pod):
    return {c.name: c for c in pod.spec.containers}


def rendered_pod(dag, *, conf=None, map_index=-1, window=WINDOW, with_context=False):
    task, context = render(dag.get_task("rerun_failed_deliveries"), conf=conf, map_index=map_index, **window)
    pod = build_pod(task, context)
    return (task, pod, context) if with_context else (task, pod)


def check_pod(pod, *, image, base_url, secret_name):
    containers = containers_by_name(pod)
    assert set(containers) == {"base", "airflow-xcom-sidecar"}
    base = containers["base"]

    assert base.image == image
    assert base.command == [] and base.args == []

    env = env_of(base)
    # The window: the run's data interval less the margin, RFC 3339 in UTC; the margin is
    # also how long the binary gives System Activity to show a job.
    assert env["RERUN_SINCE"].value == RERUN_SINCE
    assert env["RERUN_UNTIL"].value == RERUN_UNTIL
    assert env["RERUN_CONFIRM"].value == "2m"
    assert env["LOOKERSDK_BASE_URL"].value == base_url
    assert env["LOG_FORMAT"].value == "json"
    assert env["RERUN_DRY_RUN"].value == "false"
    assert env["RERUN_RESULT_FILE"].value == "/airflow/xcom/return.json"
    assert env["LOOKERSDK_VERIFY_SSL"].value == "true"
    # A run that needs a person exits 0, so its summary becomes the XCom.
    assert env["RERUN_NEEDS_PERSON_EXIT_CODE"].value == "0"
    # The binary stops with a summary 6 minutes before execution_timeout (30 minutes)
    # would kill it: 5 for the pod's start, 1 to log out and write the summary.
    assert env["RERUN_DEADLINE"].value == "24m"
    assert env["RERUN_WAIT"].value == "15m"
    # Deployment settings, defaults here (no Variables).
    assert env["RERUN_MAX_WINDOW"].value == "168h"
    assert env["RERUN_ALLOW_HTTP"].value == "false"
    # Only settings the binary reads.
    known = {
        "LOOKERSDK_BASE_URL", "LOOKERSDK_CLIENT_ID", "LOOKERSDK_CLIENT_SECRET", "LOOKERSDK_VERIFY_SSL",
        "LOOKERSDK_TIMEOUT", "RERUN_SINCE", "RERUN_UNTIL", "RERUN_LOOKBACK", "RERUN_LOOK_ID", "RERUN_CONFIRM",
        "RERUN_DRY_RUN", "RERUN_CONCURRENCY", "RERUN_RATE", "RERUN_RESULT_FILE", "RERUN_WAIT",
        "RERUN_NEEDS_PERSON_EXIT_CODE", "LOG_LEVEL", "LOG_FORMAT",
        "RERUN_DEADLINE", "RERUN_MAX_WINDOW", "RERUN_ALLOW_HTTP",
    }  # fmt: skip
    assert set(env) <= known, set(env) - known

    # Credentials: secretKeyRef only, never a value.
    for name, key in [("LOOKERSDK_CLIENT_ID", "client_id"), ("LOOKERSDK_CLIENT_SECRET", "client_secret")]:
        assert env[name].value is None
        ref = env[name].value_from.secret_key_ref
        assert (ref.name, ref.key) == (secret_name, key)
    plain = {n for n, e in env.items() if e.value_from is None}
    assert not (plain & CREDENTIAL_ENVS)
    assert not base.env_from

    assert base.resources.requests == {"cpu": "10m", "memory": "32Mi"}
    assert base.resources.limits == {"memory": "64Mi"}

    set_fields = {k: v for k, v in base.security_context.to_dict().items() if v is not None}
    assert set_fields == RESTRICTED
    psc = pod.spec.security_context
    assert (psc.run_as_non_root, psc.run_as_user, psc.run_as_group, psc.fs_group) == (True, 65532, 65532, 65532)
    assert psc.seccomp_profile.type == "RuntimeDefault"
    assert pod.spec.automount_service_account_token is False
    assert not pod.spec.host_network
    assert pod.spec.restart_policy == "Never"

    # XCom: an emptyDir mounted at /airflow/xcom in both containers.
    volumes = {v.name: v for v in pod.spec.volumes}
    assert volumes["xcom"].empty_dir is not None
    for c in containers.values():
        assert any(m.name == "xcom" and m.mount_path == "/airflow/xcom" for m in c.volume_mounts), c.name
    sidecar = containers["airflow-xcom-sidecar"]
    assert sidecar.security_context.to_dict()["read_only_root_filesystem"] is True
    assert sidecar.security_context.to_dict()["capabilities"]["drop"] == ["ALL"]


def test_single_instance_pod(get_dag, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_LOOKER_RERUN_BASE_URL", "https://looker.example.test")
    monkeypatch.setenv("AIRFLOW_VAR_LOOKER_RERUN_IMAGE", "registry.example.test/looker-rerun:1.2.3")
    dag = get_dag("looker_rerun")
    task, pod = rendered_pod(dag)

    assert task.do_xcom_push is True
    assert task.retries == 1
    check_pod(
        pod,
        image="registry.example.test/looker-rerun:1.2.3",
        base_url="https://looker.example.test",
        secret_name="looker-rerun",
    )
    assert pod.metadata.name.startswith("looker-rerun-")
    assert pod.metadata.labels["app.kubernetes.io/name"] == "looker-rerun"
    assert pod.metadata.labels["dag_id"] == "looker_rerun"


def test_window_matches_the_scheduled_interval(get_dag, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_LOOKER_RERUN_BASE_URL", "https://looker.example.test")
    monkeypatch.setenv("AIRFLOW_VAR_LOOKER_RERUN_IMAGE", "img")
    dag = get_dag("looker_rerun")
    info = scheduled_interval(dag, "2026-11-28")
    window = {
        "data_interval_start": info.data_interval.start,
        "data_interval_end": info.data_interval.end,
        "logical_date": info.logical_date,
        "run_after": info.run_after,
    }
    _, pod = rendered_pod(dag, window=window)
    env = env_of(containers_by_name(pod)["base"])
    assert (env["RERUN_SINCE"].value, env["RERUN_UNTIL"].value) == (RERUN_SINCE, RERUN_UNTIL)


def test_params_override_window_and_dry_run_only(get_dag, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_LOOKER_RERUN_BASE_URL", "https://from-variable.example.test")
    monkeypatch.setenv("AIRFLOW_VAR_LOOKER_RERUN_IMAGE", "registry.example.test/looker-rerun:1.2.3")
    monkeypatch.setenv("AIRFLOW_VAR_LOOKER_RERUN_ALLOW_HTTP", "True")
    monkeypatch.setenv("AIRFLOW_VAR_LOOKER_RERUN_MAX_WINDOW_HOURS", "48")
    dag = get_dag("looker_rerun")
    _, pod = rendered_pod(
        dag,
        conf={"since": "2026-11-20T15:00:00Z", "until": "2026-11-21T01:00:00Z", "dry_run": True},
    )
    base = containers_by_name(pod)["base"]
    env = env_of(base)
    # The image, the URL and plain http are the deployment's, whatever the run's params.
    assert base.image == "registry.example.test/looker-rerun:1.2.3"
    assert env["LOOKERSDK_BASE_URL"].value == "https://from-variable.example.test"
    assert env["RERUN_ALLOW_HTTP"].value == "true"
    assert env["RERUN_MAX_WINDOW"].value == "48h"
    # The caller's window, used as given: no margin taken off.
    assert env["RERUN_SINCE"].value == "2026-11-20T15:00:00Z"
    assert env["RERUN_UNTIL"].value == "2026-11-21T01:00:00Z"
    assert env["RERUN_DRY_RUN"].value == "true"


def test_defaults_without_variables(get_dag, supervisor_comms):
    # No Variables anywhere: the image falls back to the published one, the base URL is
    # left empty (the binary then exits 2 naming LOOKERSDK_BASE_URL).
    dag = get_dag("looker_rerun")
    _, pod = rendered_pod(dag)
    base = containers_by_name(pod)["base"]
    assert base.image == "ghcr.io/looker-rerun/looker-rerun:latest"
    assert env_of(base)["LOOKERSDK_BASE_URL"].value == ""


@pytest.mark.parametrize(
    ("map_index", "name", "base_url", "secret"),
    [
        (0, "prod", "https://prod.looker.example.com", "looker-rerun-prod"),
        (1, "emea", "https://emea.looker.example.com", "looker-rerun-emea"),
    ],
)
def test_multi_instance_mapped_pods(get_dag, monkeypatch, map_index, name, base_url, secret):
    import looker_rerun

    monkeypatch.setenv("AIRFLOW_VAR_LOOKER_RERUN_IMAGE", "registry.example.test/looker-rerun:1.2.3")
    dag = get_dag("looker_rerun_multi")
    mapped = dag.get_task("rerun_failed_deliveries")
    assert mapped.is_mapped
    assert len(looker_rerun.LOOKER_INSTANCES) == 2

    task, pod, context = rendered_pod(dag, map_index=map_index, with_context=True)

    # The mapped task instance is labelled with the instance name in the UI; the worker
    # renders map_index_template like this after the task ran (an error fails the task).
    template = context["map_index_template"]
    assert task.dag.get_template_env().from_string(template).render(context) == name

    assert task.do_xcom_push is True
    check_pod(pod, image="registry.example.test/looker-rerun:1.2.3", base_url=base_url, secret_name=secret)
    assert pod.metadata.name.startswith(f"looker-rerun-{name}-")
    assert pod.metadata.labels["looker-instance"] == name
    assert pod.metadata.labels["map_index"] == str(map_index)


def test_docker_variant(get_dag, monkeypatch):
    from unittest import mock

    from airflow.providers.docker.operators.docker import DockerOperator
    from airflow.sdk import Connection

    monkeypatch.setenv("AIRFLOW_VAR_LOOKER_RERUN_BASE_URL", "https://looker.example.test")
    monkeypatch.setenv("AIRFLOW_VAR_LOOKER_RERUN_IMAGE", "registry.example.test/looker-rerun:1.2.3")
    dag = get_dag("looker_rerun_docker")
    task, context = render(dag.get_task("rerun_failed_deliveries"), **WINDOW)

    assert task.image == "registry.example.test/looker-rerun:1.2.3"
    assert task.environment["RERUN_SINCE"] == RERUN_SINCE
    assert task.environment["RERUN_UNTIL"] == RERUN_UNTIL
    assert task.environment["RERUN_CONFIRM"] == "2m"
    assert task.environment["LOOKERSDK_BASE_URL"] == "https://looker.example.test"
    assert task.environment["RERUN_NEEDS_PERSON_EXIT_CODE"] == "0"
    assert not (set(task.environment) & CREDENTIAL_ENVS)
    assert "private_environment" not in task.template_fields
    assert task.do_xcom_push is True and task.xcom_all is True
    assert task.user == "65532:65532"
    assert task.mem_limit == "64m"
    assert task.privileged is False
    assert task.network_mode == "bridge"
    assert [(m["Target"], m["Type"]) for m in task.mounts] == [("/airflow/xcom", "tmpfs")]
    # Writable by uid 65532 also where the engine gives a tmpfs no mode (podman: 000).
    # 8 MiB: the largest summary a run can write (see RESULT_TMPFS_BYTES).
    assert task.mounts[0]["TmpfsOptions"] == {"SizeBytes": 8 << 20, "Mode": 0o1777}

    conn = Connection(conn_id="looker_rerun", conn_type="generic", login="the-id", password="the-secret")
    seen = {}

    def fake_execute(self, context):
        seen.update(self._private_environment)
        return DOCKER_OUTPUT

    with (
        mock.patch.object(Connection, "get", return_value=conn) as get,
        mock.patch.object(DockerOperator, "execute", fake_execute),
    ):
        result = task.execute(context)

    get.assert_called_once_with("looker_rerun")
    assert seen == {"LOOKERSDK_CLIENT_ID": "the-id", "LOOKERSDK_CLIENT_SECRET": "the-secret"}
    # The summary line becomes a dict, as KubernetesPodOperator's XCom is.
    assert result == json.loads(DOCKER_SUMMARY)


# What DockerOperator(xcom_all=True) returns for a real run: stdout and stderr as one
# stream, the summary before the binary's last log line (LOG_FORMAT=json).
DOCKER_SUMMARY = (
    '{"window":{"since":"2026-11-27T00:58:00Z","until":"2026-11-28T00:58:00Z"},"source":"system_activity",'
    '"rerun":[],"skipped":[],"failed":[],"needs_person":[],"exit_code":0}'
)
DOCKER_OUTPUT = [
    '{"level":"info","since":"2026-11-27T00:58:00Z","time":"2026-11-28T01:00:01Z","message":"looker-rerun starting"}',
    DOCKER_SUMMARY,
    '{"level":"info","rerun":0,"exit_code":0,"time":"2026-11-28T01:00:02Z","message":"looker-rerun done"}',
]


@pytest.mark.parametrize(
    ("lines", "want"),
    [
        pytest.param(DOCKER_OUTPUT, json.loads(DOCKER_SUMMARY), id="summary before the last log line"),
        pytest.param([DOCKER_SUMMARY], json.loads(DOCKER_SUMMARY), id="summary alone"),
        pytest.param(["not json", DOCKER_SUMMARY, "", "{"], json.loads(DOCKER_SUMMARY), id="other output"),
        pytest.param(
            ['{"level":"warn","window":{},"message":"a log line with a window"}'], None, id="log lines only"
        ),
        pytest.param([], None, id="no output"),
        # A long summary reaches the stream in pieces; a log line landed after the first.
        pytest.param(
            [
                DOCKER_OUTPUT[0],
                DOCKER_SUMMARY[:40] + DOCKER_OUTPUT[2],
                DOCKER_SUMMARY[40:90],
                DOCKER_SUMMARY[90:],
            ],
            json.loads(DOCKER_SUMMARY),
            id="summary in pieces with a log line between",
        ),
    ],
)
def test_docker_summary_from_output(lines, want):
    from looker_rerun_docker import summary_from_output

    assert summary_from_output(lines) == want


@pytest.mark.parametrize(
    ("variable", "conf", "want"),
    [
        (None, None, "bridge"),
        ("host", None, "host"),
        ("host", {"docker_network": "looker-net"}, "looker-net"),
    ],
)
def test_docker_network(get_dag, monkeypatch, supervisor_comms, variable, conf, want):
    if variable:
        monkeypatch.setenv("AIRFLOW_VAR_LOOKER_RERUN_DOCKER_NETWORK", variable)
    monkeypatch.setenv("AIRFLOW_VAR_LOOKER_RERUN_IMAGE", "img")
    monkeypatch.setenv("AIRFLOW_VAR_LOOKER_RERUN_BASE_URL", "https://looker.example.test")
    task, _ = render(get_dag("looker_rerun_docker").get_task("rerun_failed_deliveries"), conf=conf, **WINDOW)
    assert task.network_mode == want
