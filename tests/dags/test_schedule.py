"""Schedule, window and dependencies are what the README says."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pendulum
import pytest

from conftest import render, scheduled_interval

DAG_IDS = ["looker_rerun", "looker_rerun_multi", "looker_rerun_docker"]


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_runs_daily_at_10_tokyo_over_the_ten_hours_before(get_dag, dag_id):
    from airflow.timetables.trigger import CronTriggerTimetable

    from airflow.serialization.encoders import coerce_to_core_timetable

    dag = get_dag(dag_id)
    timetable = coerce_to_core_timetable(dag.timetable)
    assert isinstance(timetable, CronTriggerTimetable)
    assert timetable.summary == "0 10 * * *"

    info = scheduled_interval(dag, "2026-11-28")
    # Starts at 10:00 JST on the day...
    assert info.run_after == pendulum.datetime(2026, 11, 28, 10, tz="Asia/Tokyo")
    # ...and covers 00:00-10:00 JST, a real (non-empty) interval.
    assert info.data_interval.start == pendulum.datetime(2026, 11, 27, 15, tz="UTC")
    assert info.data_interval.end == pendulum.datetime(2026, 11, 28, 1, tz="UTC")
    assert info.data_interval.end - info.data_interval.start == datetime.timedelta(hours=10)


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_consecutive_runs_are_a_day_apart(get_dag, dag_id):
    dag = get_dag(dag_id)
    a = scheduled_interval(dag, "2026-03-30")
    b = scheduled_interval(dag, "2026-03-31")
    assert b.run_after - a.run_after == datetime.timedelta(days=1)
    # No DST in Asia/Tokyo: always 01:00Z.
    assert (a.data_interval.end.hour, b.data_interval.end.hour) == (1, 1)


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_rerun_waits_for_the_nightly_batch_asset(get_dag, dag_id):
    from looker_rerun_common import NIGHTLY_BATCH_DONE, NightlyBatchSensor

    dag = get_dag(dag_id)
    assert set(dag.task_ids) == {"wait_for_nightly_batch", "rerun_failed_deliveries", "check_summary"}
    sensor = dag.get_task("wait_for_nightly_batch")
    rerun = dag.get_task("rerun_failed_deliveries")

    assert rerun.upstream_task_ids == {"wait_for_nightly_batch"}
    assert rerun.trigger_rule == "all_success"
    # The check reads the re-run's summary and is the last task, the one to alert on.
    check = dag.get_task("check_summary")
    assert check.upstream_task_ids == {"rerun_failed_deliveries"}
    assert check.downstream_task_ids == set()
    assert check.retries == 0
    assert isinstance(sensor, NightlyBatchSensor)
    assert sensor.inlets == [NIGHTLY_BATCH_DONE]
    assert (NIGHTLY_BATCH_DONE.name, NIGHTLY_BATCH_DONE.uri) == ("nightly_batch_warehouse", "nightly_batch_warehouse")
    assert sensor.mode == "reschedule"
    assert sensor.poke_interval == 600
    assert sensor.timeout == 6 * 3600
    assert sensor.retries == 0


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_rerun_task_retries_and_timeout(get_dag, dag_id):
    rerun = get_dag(dag_id).get_task("rerun_failed_deliveries")
    assert rerun.retries == 1
    assert rerun.retry_delay == datetime.timedelta(minutes=10)
    assert rerun.execution_timeout == datetime.timedelta(minutes=30)


class FakeInletEvents:
    """inlet_events[asset].after(..).ascending(..).limit(..), over a fixed event list."""

    def __init__(self, asset, timestamps):
        self.asset = asset
        self.timestamps = timestamps
        self.after_arg = None

    def __getitem__(self, asset):
        assert asset == self.asset
        return self

    def after(self, after):
        self.after_arg = after
        return self

    def ascending(self, ascending=True):
        assert ascending is True
        return self

    def limit(self, limit):
        assert limit == 1
        return self

    def __iter__(self):
        after = pendulum.parse(self.after_arg)
        hits = [t for t in sorted(self.timestamps) if t > after]
        return iter([SimpleNamespace(timestamp=t) for t in hits[:1]])


@pytest.mark.parametrize(
    ("events", "done"),
    [
        ([], False),
        # Yesterday's batch does not count.
        ([pendulum.datetime(2026, 11, 27, 3, 10, tz="Asia/Tokyo")], False),
        # Today's batch, finished 03:10 JST.
        ([pendulum.datetime(2026, 11, 28, 3, 10, tz="Asia/Tokyo")], True),
        # Late batch, finished after 10:00: still go.
        ([pendulum.datetime(2026, 11, 28, 11, 0, tz="Asia/Tokyo")], True),
    ],
)
def test_sensor_pokes_for_a_batch_event_since_the_window_start(get_dag, events, done):
    from looker_rerun_common import NIGHTLY_BATCH_DONE

    dag = get_dag("looker_rerun")
    info = scheduled_interval(dag, "2026-11-28")
    sensor, context = render(
        dag.get_task("wait_for_nightly_batch"),
        data_interval_start=info.data_interval.start,
        data_interval_end=info.data_interval.end,
    )
    fake = FakeInletEvents(NIGHTLY_BATCH_DONE, events)
    context = {**context, "inlet_events": fake}

    result = sensor.poke(context)

    assert fake.after_arg == "2026-11-27T15:00:00Z"
    assert result.is_done is done
    if done:
        assert pendulum.parse(result.xcom_value) == events[0]


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_backfill_of_one_missed_day(get_dag, dag_id):
    # The README's command for the run of 27 Nov 2026 (JST):
    #   airflow backfill create --dag-id looker_rerun \
    #     --from-date 2026-11-27T00:00:00+09:00 --to-date 2026-11-27T23:59:59+09:00
    # creates exactly that day's run, over 00:00-10:00 JST.
    from airflow.cli.cli_config import parsedate
    from airflow.serialization.serialized_objects import DagSerialization

    dag = DagSerialization.from_dict(DagSerialization.to_dict(get_dag(dag_id)))
    infos = list(
        dag.iter_dagrun_infos_between(parsedate("2026-11-27T00:00:00+09:00"), parsedate("2026-11-27T23:59:59+09:00"))
    )
    assert [(i.data_interval.start, i.data_interval.end) for i in infos] == [
        (pendulum.datetime(2026, 11, 26, 15, tz="UTC"), pendulum.datetime(2026, 11, 27, 1, tz="UTC"))
    ]
    # Its logical date (the run's "date" in the UI and CLI) is the window start, 00:00 JST.
    assert infos[0].logical_date == pendulum.datetime(2026, 11, 27, tz="Asia/Tokyo")


def test_secret_manifest_matches_the_dags():
    import yaml

    import looker_rerun
    from conftest import REPO

    docs = list(yaml.safe_load_all((REPO / "deploy/k8s/looker-rerun-secret.yaml").read_text()))
    secrets = {d["metadata"]["name"]: d for d in docs}
    assert all(d["kind"] == "Secret" for d in docs)
    expected = {looker_rerun.K8S_SECRET_NAME} | {i["secret"] for i in looker_rerun.LOOKER_INSTANCES}
    assert set(secrets) == expected
    for secret in secrets.values():
        assert set(secret["stringData"]) == {"client_id", "client_secret"}
