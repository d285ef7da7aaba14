"""Test set-up for the DAGs in dags/: an isolated Airflow home and offline task rendering.

Nothing here needs a database, a scheduler or a Kubernetes cluster: the DAG files are
parsed with the same BundleDagBag the DAG processor and the workers use, and a task is
rendered through the Task SDK's RuntimeTaskInstance, the object a worker renders it with,
fed a TIRunContext like the one the API server sends.

The end-to-end tests (test_e2e_*.py) share the fixtures at the bottom: podman, the image
under test and the stand-in Looker.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"

# Before anything imports airflow: a throw-away AIRFLOW_HOME, so the tests never read or
# write a real deployment's config, and no example DAGs.
_home = tempfile.mkdtemp(prefix="looker-rerun-dag-tests-")
os.environ["AIRFLOW_HOME"] = _home
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
for _k in [k for k in os.environ if k.startswith(("AIRFLOW_VAR_", "AIRFLOW_CONN_"))]:
    del os.environ[_k]

# The DAG files import looker_rerun_common from the bundle root, as in a deployment.
if str(DAGS) not in sys.path:
    sys.path.append(str(DAGS))

import pendulum  # noqa: E402
import pytest  # noqa: E402

TOKYO = "Asia/Tokyo"


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=DAGS, bundle_path=DAGS, bundle_name="dags-folder")


@pytest.fixture
def get_dag(dagbag):
    def _get(dag_id):
        assert not dagbag.import_errors, dagbag.import_errors
        assert dag_id in dagbag.dags, f"{dag_id} not in {sorted(dagbag.dags)}"
        return dagbag.dags[dag_id]

    return _get


def scheduled_runs(dag, first_day: str, days: int = 1):
    """The DagRunInfos of the runs the scheduler creates for ``days`` days from ``first_day``
    (YYYY-MM-DD, Asia/Tokyo), from the DAG's timetable in its scheduler-side form: the
    first as for a DAG that starts that day, each next one from the data interval of the
    one before, as the scheduler chains them when it runs on time."""
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    timetable = coerce_to_core_timetable(dag.timetable)
    earliest = pendulum.parse(first_day, tz=TOKYO)
    runs = []
    last = None
    for _ in range(days):
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last,
            restriction=TimeRestriction(earliest=None if last else earliest, latest=None, catchup=True),
        )
        runs.append(info)
        last = info.data_interval
    return runs


def scheduled_interval(dag, run_day: str):
    """The DagRunInfo (data interval, logical date, run_after) the scheduler gives the run
    of ``run_day`` (YYYY-MM-DD, Asia/Tokyo), the one after the day before's."""
    day_before = pendulum.parse(run_day, tz=TOKYO).subtract(days=1).to_date_string()
    return scheduled_runs(dag, day_before, 2)[1]


def backfill_runs(dag, from_date: str, to_date: str):
    """The DagRunInfos of the runs `airflow backfill create --from-date FROM --to-date TO`
    creates: the serialized DAG's run infos between the two dates, as the backfill does
    (airflow.models.backfill._get_info_list, which also drops runs not yet due)."""
    from airflow.cli.cli_config import parsedate
    from airflow.serialization.serialized_objects import DagSerialization

    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    return list(serialized.iter_dagrun_infos_between(parsedate(from_date), parsedate(to_date)))


class FakeSupervisorComms:
    """Answers the Task SDK's requests to the supervisor the way an API server with no
    Variables or Connections would (used for Variable defaults). Asset events come from
    ``asset_events`` when a test sets one (an AssetEventStore), else there are none."""

    asset_events = None

    def send(self, msg):
        from airflow.sdk.exceptions import ErrorType
        from airflow.sdk.execution_time.comms import ErrorResponse

        name = type(msg).__name__
        if name == "GetVariable":
            return ErrorResponse(error=ErrorType.VARIABLE_NOT_FOUND, detail={"key": msg.key})
        if name == "GetConnection":
            return ErrorResponse(error=ErrorType.CONNECTION_NOT_FOUND, detail={"conn_id": msg.conn_id})
        if name == "GetAssetEventByAsset" and self.asset_events is not None:
            return self.asset_events.answer(msg)
        if name == "GetDagRun" and self.asset_events is not None:
            return self.asset_events.dag_run(msg)
        raise AssertionError(f"unexpected supervisor request in an offline test: {msg!r}")


@pytest.fixture
def supervisor_comms(monkeypatch):
    from airflow.sdk.execution_time import task_runner

    comms = FakeSupervisorComms()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    return comms


class AssetEventStore:
    """Asset events in an in-memory metadata database (Airflow's own tables), served by the
    execution API's own route for GetAssetEventByAsset (filters, order, limit as the API
    server applies them). Only the HTTP hop between supervisor and API server is skipped."""

    def __init__(self):
        from sqlalchemy import create_engine
        from sqlalchemy.orm import Session

        from airflow.models import import_all_models
        from airflow.models.base import Base

        import_all_models()  # every model's table on Base.metadata, foreign keys resolved
        self.engine = create_engine("sqlite://")
        Base.metadata.create_all(self.engine)
        self.session = Session(self.engine)
        self.requests = []

    def add(self, asset, timestamp, *, batch_due=None):
        """An event of ``asset`` at ``timestamp``; published by a run of the batch DAG due
        (its run_after) at ``batch_due``, or, without it, posted from outside Airflow."""
        from airflow.models.asset import AssetEvent, AssetModel
        from airflow.models.dagrun import DagRun
        from airflow.utils.types import DagRunType

        model = self.session.query(AssetModel).filter_by(name=asset.name, uri=asset.uri).one_or_none()
        if model is None:
            model = AssetModel(name=asset.name, uri=asset.uri)
            self.session.add(model)
            self.session.flush()
        source = {}
        if batch_due is not None:
            run_id = f"scheduled__{batch_due.isoformat()}"
            if self.session.query(DagRun).filter_by(dag_id="nightly_batch", run_id=run_id).one_or_none() is None:
                self.session.add(
                    DagRun(
                        dag_id="nightly_batch",
                        run_id=run_id,
                        logical_date=batch_due,
                        run_after=batch_due,
                        start_date=batch_due,
                        data_interval=(batch_due, batch_due),
                        run_type=DagRunType.SCHEDULED,
                        state="success",
                    )
                )
            source = dict(source_dag_id="nightly_batch", source_run_id=run_id, source_task_id="publish", source_map_index=-1)
        self.session.add(AssetEvent(asset_id=model.id, timestamp=timestamp, **source))
        self.session.flush()

    def dag_run(self, msg):
        """What the supervisor sends back for a GetDagRun: the execution API route's answer."""
        from airflow.api_fastapi.execution_api.routes.dag_runs import get_dag_run
        from airflow.sdk.api.datamodels._generated import DagRun
        from airflow.sdk.execution_time.comms import DagRunResult

        response = get_dag_run(dag_id=msg.dag_id, run_id=msg.run_id, session=self.session)
        return DagRunResult.from_api_response(DagRun.model_validate_json(response.model_dump_json()))

    def answer(self, msg):
        """What the supervisor sends back for a GetAssetEventByAsset: the route's answer,
        through JSON as over HTTP, as an AssetEventsResult."""
        import warnings

        from airflow.sdk.api.datamodels._generated import AssetEventsResponse
        from airflow.sdk.execution_time.comms import AssetEventsResult

        with warnings.catch_warnings():
            # The API server's own imports (svcs -> fastapi.testclient) warn about starlette's
            # test client; nothing here uses it.
            warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
            from airflow.api_fastapi.execution_api.routes.asset_events import get_asset_event_by_asset_name_uri

        self.requests.append(msg)
        response = get_asset_event_by_asset_name_uri(
            name=msg.name,
            uri=msg.uri,
            session=self.session,
            after=msg.after,
            before=msg.before,
            ascending=msg.ascending,
            limit=msg.limit,
        )
        sdk_response = AssetEventsResponse.model_validate_json(response.model_dump_json())
        return AssetEventsResult.from_asset_events_response(sdk_response)

    def close(self):
        self.session.close()
        self.engine.dispose()


@pytest.fixture
def asset_events(supervisor_comms):
    store = AssetEventStore()
    supervisor_comms.asset_events = store
    yield store
    store.close()


def runtime_ti(
    task, *, data_interval_start=None, data_interval_end=None, logical_date=None, run_after=None, conf=None, map_index=-1
):
    """A RuntimeTaskInstance for ``task`` in a scheduled run with the given data interval.
    run_after (when the run was due) defaults to the interval's end, as for a
    CronTriggerTimetable; logical_date to run_after. Without a data interval: a manual run
    triggered without a logical date (none, and no data interval), due at run_after."""
    from airflow.sdk.api.datamodels._generated import DagRun, DagRunState, DagRunType, TIRunContext
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    if data_interval_end is None:
        run_type = DagRunType.MANUAL
        run_after = run_after or pendulum.datetime(2026, 11, 28, 15, tz="UTC")
        run_id = f"manual__{run_after.isoformat()}"
    else:
        run_type = DagRunType.SCHEDULED
        run_after = run_after or data_interval_end
        logical_date = logical_date or run_after
        run_id = f"scheduled__{logical_date.isoformat()}"
    dag_run = DagRun(
        dag_id=task.dag_id,
        run_id=run_id,
        logical_date=logical_date,
        data_interval_start=data_interval_start,
        data_interval_end=data_interval_end,
        run_after=run_after,
        start_date=run_after,
        end_date=None,
        run_type=run_type,
        state=DagRunState.RUNNING,
        conf=conf,
        consumed_asset_events=[],
        partition_key=None,
    )
    ti_context = TIRunContext(dag_run=dag_run, max_tries=task.retries)
    return RuntimeTaskInstance.model_construct(
        id=uuid.uuid4(),
        task_id=task.task_id,
        dag_id=task.dag_id,
        run_id=run_id,
        try_number=1,
        dag_version_id=uuid.uuid4(),
        map_index=map_index,
        task=task,
        bundle_instance=None,
        _ti_context_from_server=ti_context,
        max_tries=task.retries,
        start_date=pendulum.now("UTC"),
    )


def render(task, **kwargs):
    """Render ``task``'s templates as a worker would; returns (rendered task, context).
    A mapped task comes back unmapped for the given map_index.

    Rendering writes the results onto the task, so it works on a copy of the task's DAG:
    the session's DagBag stays as parsed (a worker parses the DAG file for every task).
    """
    task = copy.deepcopy(task.dag).get_task(task.task_id)
    # Operators copy params shallowly, and DagRun.conf is merged into the Param objects.
    task.params = copy.deepcopy(task.params)
    ti = runtime_ti(task, **kwargs)
    context = ti.get_template_context()
    ti.render_templates(context=context)
    return ti.task, context


def build_pod(task, context):
    """KubernetesPodOperator.build_pod_request_obj offline: the Kubernetes hook is patched
    out (as the provider's own tests do), so no kube config or cluster is needed; the XCom
    sidecar then gets the provider's default image and resources."""
    from unittest import mock

    with mock.patch("airflow.providers.cncf.kubernetes.operators.pod.KubernetesHook") as hook_cls:
        hook = hook_cls.return_value
        hook.get_namespace.return_value = "airflow"
        hook.is_in_cluster = False
        hook.get_xcom_sidecar_container_image.return_value = None
        hook.get_xcom_sidecar_container_resources.return_value = None
        hook.get_xcom_sidecar_container_security_context.return_value = None
        return task.build_pod_request_obj(context)


# --- end to end: podman, the image under test, the stand-in Looker ----------------------

IMAGE = os.environ.get("IMAGE", "looker-rerun:test")
CLIENT_ID = "demo-id"  # cmd/lookertest's default credentials
CLIENT_SECRET = "demo-secret"
# The setting the DAGs rely on to get the summary as XCom when the run needs a person.
NEEDS_PERSON_SETTING = "RERUN_NEEDS_PERSON_EXIT_CODE"

e2e = pytest.mark.skipif(
    os.environ.get("DAG_E2E", "1") == "0", reason="DAG_E2E=0: end-to-end podman test skipped on request"
)


def run(*args, check=True, timeout=120, **kwargs):
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def podman():
    path = shutil.which("podman")
    assert path, "podman not found: run scripts/podman-setup.sh (or set DAG_E2E=0 to skip this test)"
    exists = run(path, "image", "exists", IMAGE, check=False)
    assert exists.returncode == 0, (
        f"image {IMAGE} not in podman's store: build it with scripts/image-test.sh (IMAGE={IMAGE})"
    )
    return path


@pytest.fixture(scope="session")
def image(podman):
    """The image the DAGs run: IMAGE as scripts/image-test.sh built it from the Dockerfile.
    An image older than RERUN_NEEDS_PERSON_EXIT_CODE (which the DAGs set to 0) would exit 2
    on it: say so up front instead of failing in the middle of an Airflow run."""
    usage = run(podman, "run", "--rm", "--network=none", IMAGE, "-h")
    assert NEEDS_PERSON_SETTING in usage.stdout + usage.stderr, (
        f"{IMAGE}'s -h does not list {NEEDS_PERSON_SETTING}, which the DAGs set: "
        f"rebuild it with scripts/image-test.sh (IMAGE={IMAGE})"
    )
    return IMAGE


@pytest.fixture(scope="module")
def lookertest(tmp_path_factory, request):
    """The stand-in Looker, built from cmd/lookertest, on 127.0.0.1 with the demo seed, or
    the flags in the test module's LOOKERTEST_ARGS."""
    go = shutil.which("go")
    assert go, "go not found: needed to build cmd/lookertest"
    tmp = tmp_path_factory.mktemp("lookertest")
    binary = tmp / "lookertest"
    run(go, "build", "-o", str(binary), "./cmd/lookertest", cwd=REPO, timeout=600)

    host = "127.0.0.1"
    url_file = tmp / "url"
    log = open(tmp / "lookertest.log", "w")
    started = pendulum.now("UTC")
    proc = subprocess.Popen(
        [str(binary), "-addr", f"{host}:0", "-url-file", str(url_file)]
        + getattr(request.module, "LOOKERTEST_ARGS", ["-seed", "demo"]),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        written = ""
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"lookertest exited: {(tmp / 'lookertest.log').read_text()}"
            if url_file.exists() and url_file.read_text().strip():
                written = url_file.read_text().strip()
                break
            time.sleep(0.1)
        # Only the port is taken from the file: the host is the one it was told to use.
        port = written.rpartition(":")[2]
        assert written.startswith("http://") and port.isdigit(), (
            f"lookertest wrote no URL to {url_file} (got {written!r})"
        )
        yield {"url": f"http://{host}:{port}", "started": started, "log": tmp / "lookertest.log"}
    finally:
        stop(proc, timeout=10)
        log.close()


def stop(proc: subprocess.Popen, timeout: float) -> None:
    """Stop a helper process as a service manager would: SIGTERM, then SIGKILL after timeout."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


def reruns(url):
    """How many times the stand-in re-ran each plan: {"101": 1, ...}."""
    with urllib.request.urlopen(f"{url}/lookertest/reruns", timeout=10) as resp:
        return json.load(resp)
