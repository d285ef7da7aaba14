"""End to end: the pod the DAG renders, run with `podman kube play` against the stand-in Looker.

The pod is the one KubernetesPodOperator would create for a run whose data interval is
the last 10 hours, with three changes for a machine without a cluster:

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
import os
import shutil
import subprocess
import time
import urllib.request

import pendulum
import pytest
import yaml

from conftest import REPO, build_pod, render

IMAGE = os.environ.get("IMAGE", "looker-rerun:test")
CLIENT_ID = "demo-id"
CLIENT_SECRET = "demo-secret"
SECRET_NAME = "looker-rerun"  # the single-instance DAG's Kubernetes Secret

pytestmark = pytest.mark.skipif(
    os.environ.get("DAG_E2E", "1") == "0", reason="DAG_E2E=0: end-to-end podman test skipped on request"
)


def run(*args, check=True, timeout=120, **kwargs):
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def podman():
    path = shutil.which("podman")
    assert path, "podman not found: run scripts/podman-setup.sh (or set DAG_E2E=0 to skip this test)"
    exists = run(path, "image", "exists", IMAGE, check=False)
    assert exists.returncode == 0, (
        f"image {IMAGE} not in podman's store: build it with scripts/image-test.sh (IMAGE={IMAGE})"
    )
    return path


@pytest.fixture(scope="module")
def lookertest(tmp_path_factory):
    """The stand-in Looker, built from cmd/lookertest, on 127.0.0.1 with the demo seed."""
    go = shutil.which("go")
    assert go, "go not found: needed to build cmd/lookertest"
    tmp = tmp_path_factory.mktemp("lookertest")
    binary = tmp / "lookertest"
    run(go, "build", "-o", str(binary), "./cmd/lookertest", cwd=REPO, timeout=600)

    url_file = tmp / "url"
    log = open(tmp / "lookertest.log", "w")
    started = pendulum.now("UTC")
    proc = subprocess.Popen(
        [str(binary), "-addr", "127.0.0.1:0", "-url-file", str(url_file), "-seed", "demo"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        url = ""
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"lookertest exited: {(tmp / 'lookertest.log').read_text()}"
            if url_file.exists() and url_file.read_text().strip():
                time.sleep(0.1)  # may still be being written
                url = url_file.read_text().strip()
                break
            time.sleep(0.1)
        assert url.startswith("http://"), f"lookertest wrote no URL to {url_file} (got {url!r})"
        yield {"url": url, "started": started, "log": tmp / "lookertest.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


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


def reruns(url):
    with urllib.request.urlopen(f"{url}/lookertest/reruns", timeout=10) as resp:
        return json.load(resp)


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


def play_rendered_pod(podman, dag, lookertest, tmp_path, name):
    """Render the DAG's pod for the window [stand-in start - 10h, now], run it to the end.

    Returns (exit code, stdout, stderr, return.json text or None)."""
    # The data interval a scheduled run would have, ending now: the stand-in seeds its
    # failures within the 10 hours before it started.
    start = lookertest["started"].subtract(hours=10).replace(microsecond=0)
    end = pendulum.now("UTC").add(seconds=1).replace(microsecond=0)
    task, context = render(
        dag.get_task("rerun_failed_deliveries"),
        data_interval_start=start,
        data_interval_end=end,
        conf={"looker_base_url": lookertest["url"], "image": IMAGE},
    )
    pod = build_pod(task, context)

    xcom_dir = tmp_path / f"xcom-{name}"
    xcom_dir.mkdir()
    xcom_dir.chmod(0o777)  # written by uid 65532
    manifest = manifest_for_podman(pod, xcom_dir)
    env = {e["name"]: e for e in manifest["spec"]["containers"][0]["env"]}
    assert env["RERUN_SINCE"]["value"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert env["RERUN_UNTIL"]["value"] == end.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert env["LOOKERSDK_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": SECRET_NAME, "key": "client_secret"}

    pod_name = manifest["metadata"]["name"]
    container = f"{pod_name}-base"
    kube_file = tmp_path / f"{name}.yaml"
    kube_file.write_text(yaml.safe_dump(manifest, sort_keys=False))
    try:
        run(podman, "kube", "play", str(kube_file))
        waited = run(podman, "wait", container, timeout=180)
        exit_code = int(waited.stdout.strip().splitlines()[-1])
        logs = run(podman, "logs", container)
        result = xcom_dir / "return.json"
        return exit_code, logs.stdout, logs.stderr, (result.read_text() if result.exists() else None)
    finally:
        run(podman, "pod", "rm", "--force", pod_name, check=False)


def test_rendered_pod_reruns_failed_plans_once_and_leaves_summary_in_xcom(
    podman, lookertest, podman_secret, get_dag, tmp_path
):
    dag = get_dag("looker_rerun")
    assert reruns(lookertest["url"]) == {}

    exit_code, stdout, stderr, result = play_rendered_pod(podman, dag, lookertest, tmp_path, "first")

    diag = f"\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- lookertest\n{lookertest['log'].read_text()}"
    assert exit_code == 0, diag
    assert result is not None, "no /airflow/xcom/return.json" + diag
    summary = json.loads(result)
    # The same one-line JSON is the last stdout line (what DockerOperator pushes).
    assert json.loads(stdout.strip().splitlines()[-1]) == summary, diag
    # (plan ids compared as strings: Looker's API 4.0 ids are strings)
    assert sorted(str(r["plan_id"]) for r in summary["rerun"]) == ["101", "105"], summary
    assert summary["failed"] == [], summary
    assert summary["dry_run"] is False
    assert reruns(lookertest["url"]) == {"101": 1, "105": 1}, diag
    # The credentials came in through the Secret and went nowhere else.
    assert CLIENT_SECRET not in stdout + stderr + result
    # LOG_FORMAT=json: every stderr log line is a JSON object.
    for line in filter(None, stderr.splitlines()):
        json.loads(line)

    # A retry of the same run (Airflow retries=1) delivers nothing twice.
    exit_code, stdout, stderr, result = play_rendered_pod(podman, dag, lookertest, tmp_path, "second")
    diag = f"\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    assert exit_code == 0, diag
    assert json.loads(result)["rerun"] == [], result
    assert reruns(lookertest["url"]) == {"101": 1, "105": 1}

