"""End to end: the pod the DAG renders, run with `podman kube play` against the stand-in Looker.

The pod is the one KubernetesPodOperator would create for a run whose data interval is
the last 24 hours, as a scheduled run's, with three changes for a machine without a
cluster:

* the XCom sidecar is dropped (its alpine image cannot be pulled here, and the operator
  that would read return.json through it is not running); its volume stays, as a
  hostPath directory instead of an emptyDir, so the test can read return.json;
* ``hostNetwork: true``, to reach the stand-in on 127.0.0.1;
* the Secret ``looker-rerun`` is created with ``podman secret create`` (podman 4.3's kube
  play stores a ``kind: Secret`` document in a form its own secretKeyRef lookup cannot
  read, so the secret is made directly, as a JSON map of base64 values).

Needs: podman (scripts/podman-setup.sh), the image built from the Dockerfile (IMAGE,
default looker-rerun:test, built by scripts/image-test.sh), Go and cmd/lookertest. A
missing piece is a test failure, not a skip: set DAG_E2E=0 to skip this test on purpose.
"""

from __future__ import annotations

import base64
import json

import pendulum
import pytest
import yaml

from conftest import CLIENT_ID, CLIENT_SECRET, build_pod, e2e, render, reruns, run
from looker_rerun_common import ACTIVITY_MARGIN, WINDOW

SECRET_NAME = "looker-rerun"  # the single-instance DAG's Kubernetes Secret

pytestmark = e2e


@pytest.fixture
def podman_secret(podman):
    """The Kubernetes Secret the DAG references, as podman's secretKeyRef lookup reads it."""
    data = {
        "client_id": base64.b64encode(CLIENT_ID.encode()).decode(),
        "client_secret": base64.b64encode(CLIENT_SECRET.encode()).decode(),
    }
    run(podman, "secret", "rm", SECRET_NAME, check=False)
    run(podman, "secret", "create", SECRET_NAME, "-", input=json.dumps(data))
    yield SECRET_NAME
    run(podman, "secret", "rm", SECRET_NAME, check=False)


def manifest_for_podman(pod, xcom_dir):
    """The rendered V1Pod as a manifest for `podman kube play`, adapted as described above."""
    from kubernetes.client import ApiClient

    manifest = ApiClient().sanitize_for_serialization(pod)
    spec = manifest["spec"]
    spec["containers"] = [c for c in spec["containers"] if c["name"] != "airflow-xcom-sidecar"]
    assert [c["name"] for c in spec["containers"]] == ["base"]
    xcom = [v for v in spec["volumes"] if v["name"] == "xcom"]
    assert len(xcom) == 1 and "emptyDir" in xcom[0]
    del xcom[0]["emptyDir"]
    xcom[0]["hostPath"] = {"path": str(xcom_dir), "type": "Directory"}
    spec["hostNetwork"] = True
    return manifest


def play_rendered_pod(podman, image, dag, lookertest, tmp_path, name):
    """Render the DAG's pod for a scheduled run's data interval ending now, run it to the end.

    Returns (exit code, stdout, stderr, return.json text or None)."""
    # The stand-in seeds its failures within the 20 hours before it started, so all of
    # them are in the 24 hours before now; its seeds are at least 2 hours old, so the
    # margin taken off the window's end leaves them in.
    end = pendulum.now("UTC").add(seconds=1).replace(microsecond=0)
    start = end - WINDOW
    # The URL and image are the deployment's Variables (a run's params cannot set them).
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_VAR_LOOKER_RERUN_BASE_URL", lookertest["url"])
        mp.setenv("AIRFLOW_VAR_LOOKER_RERUN_IMAGE", image)
        task, context = render(dag.get_task("rerun_failed_deliveries"), data_interval_start=start, data_interval_end=end)
    pod = build_pod(task, context)

    xcom_dir = tmp_path / f"xcom-{name}"
    xcom_dir.mkdir()
    xcom_dir.chmod(0o777)  # written by uid 65532
    manifest = manifest_for_podman(pod, xcom_dir)
    env = {e["name"]: e for e in manifest["spec"]["containers"][0]["env"]}
    # The data interval less the margin for System Activity's lag.
    assert env["RERUN_SINCE"]["value"] == (start - ACTIVITY_MARGIN).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert env["RERUN_UNTIL"]["value"] == (end - ACTIVITY_MARGIN).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert env["LOOKERSDK_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": SECRET_NAME, "key": "client_secret"}

    pod_name = manifest["metadata"]["name"]
    container = f"{pod_name}-base"
    # podman 4.3's kube play takes a file or directory in its working directory named like
    # an image (./looker-rerun for looker-rerun:test) as that image's build context, and
    # fails on a binary someone built there: play from a directory of the test's own.
    play_dir = tmp_path / f"play-{name}"
    play_dir.mkdir()
    kube_file = play_dir / "pod.yaml"
    kube_file.write_text(yaml.safe_dump(manifest, sort_keys=False))
    try:
        run(podman, "kube", "play", str(kube_file), cwd=play_dir)
        waited = run(podman, "wait", container, timeout=180)
        exit_code = int(waited.stdout.strip().splitlines()[-1])
        logs = run(podman, "logs", container)
        result = xcom_dir / "return.json"
        return exit_code, logs.stdout, logs.stderr, (result.read_text() if result.exists() else None)
    finally:
        run(podman, "pod", "rm", "--force", pod_name, check=False)


def test_rendered_pod_reruns_failed_plans_once_and_leaves_summary_in_xcom(
    podman, image, lookertest, podman_secret, get_dag, tmp_path
):
    dag = get_dag("looker_rerun")
    assert reruns(lookertest["url"]) == {}

    exit_code, stdout, stderr, result = play_rendered_pod(podman, image, dag, lookertest, tmp_path, "first")

    diag = f"\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- lookertest\n{lookertest['log'].read_text()}"
    assert exit_code == 0, diag
    assert result is not None, "no /airflow/xcom/return.json" + diag
    summary = json.loads(result)
    # The same one-line JSON is the last stdout line.
    assert json.loads(stdout.strip().splitlines()[-1]) == summary, diag
    # (plan ids compared as strings: Looker's API 4.0 ids are strings) 106 failed 20 hours
    # before the stand-in started: after 10:00 the day before, in this run's window.
    assert sorted(str(r["plan_id"]) for r in summary["rerun"]) == ["101", "105", "106"], summary
    assert summary["failed"] == [], summary
    assert summary["dry_run"] is False
    assert summary["exit_code"] == 0, summary  # what check_summary reads
    assert reruns(lookertest["url"]) == {"101": 1, "105": 1, "106": 1}, diag
    # The credentials came in through the Secret and went nowhere else.
    assert CLIENT_SECRET not in stdout + stderr + result
    # LOG_FORMAT=json: every stderr log line is a JSON object.
    for line in filter(None, stderr.splitlines()):
        json.loads(line)

    # A retry of the same run (Airflow retries=1) delivers nothing twice.
    exit_code, stdout, stderr, result = play_rendered_pod(podman, image, dag, lookertest, tmp_path, "second")
    diag = f"\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    assert exit_code == 0, diag
    assert json.loads(result)["rerun"] == [], result
    assert reruns(lookertest["url"]) == {"101": 1, "105": 1, "106": 1}

