"""Schedule, window and dependencies are what the README says."""

from __future__ import annotations

import datetime

import pendulum
import pytest

from conftest import backfill_runs, render, scheduled_interval, scheduled_runs

DAG_IDS = ["looker_rerun", "looker_rerun_multi", "looker_rerun_docker"]


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_runs_daily_at_10_tokyo_over_the_24_hours_before(get_dag, dag_id):
    from airflow.timetables.trigger import CronTriggerTimetable

    from airflow.serialization.encoders import coerce_to_core_timetable

    dag = get_dag(dag_id)
    timetable = coerce_to_core_timetable(dag.timetable)
    assert isinstance(timetable, CronTriggerTimetable)
    assert timetable.summary == "0 10 * * *"

    info = scheduled_interval(dag, "2026-11-28")
    # Starts at 10:00 JST on the day...
    assert info.run_after == pendulum.datetime(2026, 11, 28, 10, tz="Asia/Tokyo")
    # ...and covers the 24 hours before, 10:00-10:00 JST.
    assert info.data_interval.start == pendulum.datetime(2026, 11, 27, 1, tz="UTC")
    assert info.data_interval.end == pendulum.datetime(2026, 11, 28, 1, tz="UTC")
    assert info.data_interval.end == info.run_after
    # Its logical date (the run's "date" in the UI and CLI) is the interval's start.
    assert info.logical_date == pendulum.datetime(2026, 11, 27, 10, tz="Asia/Tokyo")


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
    check_id = "check_summaries" if dag_id == "looker_rerun_multi" else "check_summary"
    assert set(dag.task_ids) == {"check_params", "wait_for_nightly_batch", "rerun_failed_deliveries", check_id}
    params = dag.get_task("check_params")
    sensor = dag.get_task("wait_for_nightly_batch")
    rerun = dag.get_task("rerun_failed_deliveries")

    # The params are checked first, before the sensor waits or a container starts.
    assert params.upstream_task_ids == set()
    assert params.retries == 0
    assert sensor.upstream_task_ids == {"check_params"}
    assert rerun.upstream_task_ids == {"wait_for_nightly_batch"}
    assert rerun.trigger_rule == "all_success"
    # The check reads the re-run's summary and is the last task, the one to alert on. It
    # runs whatever became of the re-run (a failed one may still have left its summary).
    check = dag.get_task(check_id)
    assert check.upstream_task_ids == {"rerun_failed_deliveries"}
    assert check.downstream_task_ids == set()
    assert check.trigger_rule == "all_done"
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


def jst(day, hour, minute=0, second=0):
    return pendulum.datetime(2026, 11, day, hour, minute, second, tz="Asia/Tokyo")


@pytest.mark.parametrize(
    ("events", "want"),
    [
        pytest.param([], None, id="no batch yet"),
        pytest.param([jst(27, 3, 10)], None, id="yesterday's batch"),
        # In the run's 24-hour window (from 10:00 yesterday), but not this night's.
        pytest.param([jst(27, 14)], None, id="yesterday's late batch"),
        pytest.param([jst(27, 23, 59, 59)], None, id="a second before midnight"),
        pytest.param([jst(28, 0)], jst(28, 0), id="at midnight"),
        pytest.param([jst(28, 3, 10)], jst(28, 3, 10), id="this night's batch"),
        # Finished after 10:00: the warehouse is fresh, still go.
        pytest.param([jst(28, 11)], jst(28, 11), id="this night's late batch"),
        pytest.param([jst(27, 14), jst(28, 3, 10), jst(28, 4)], jst(28, 3, 10), id="the first of this night's"),
        # Published by a run of the batch DAG: the night is the one that run was due in.
        pytest.param([(jst(28, 3, 10), jst(28, 0, 30))], jst(28, 3, 10), id="this night's batch run"),
        pytest.param(
            [(jst(29, 2), jst(28, 0, 30))], jst(29, 2), id="this night's batch run, finished the next night"
        ),
        # Yesterday's batch run, cleared and run again after midnight: its event is
        # tonight, its run is yesterday's. It must not count.
        pytest.param([(jst(28, 1), jst(27, 0, 30))], None, id="a re-run of yesterday's batch run"),
        pytest.param(
            [(jst(28, 1), jst(27, 0, 30)), (jst(28, 3, 10), jst(28, 0, 30))],
            jst(28, 3, 10),
            id="a re-run of yesterday's, then this night's",
        ),
        # A later night's batch does not make this night's warehouse fresh (a backfill).
        pytest.param([(jst(29, 3), jst(29, 0, 30))], None, id="the next night's batch run"),
        pytest.param([jst(29, 3)], None, id="the next night's posted event"),
    ],
)
def test_sensor_accepts_only_this_nights_batch(get_dag, asset_events, events, want):
    # The run of 28 Nov: its night is the 28th in Asia/Tokyo. The events (a timestamp, or
    # a timestamp and when the batch run that published it was due) are served by the
    # execution API's own routes, as the sensor's inlet_events query them.
    from looker_rerun_common import NIGHTLY_BATCH_DONE

    dag = get_dag("looker_rerun")
    info = scheduled_interval(dag, "2026-11-28")
    for e in events:
        timestamp, due = e if isinstance(e, tuple) else (e, None)
        asset_events.add(NIGHTLY_BATCH_DONE, timestamp, batch_due=due)
    sensor, context = render(
        dag.get_task("wait_for_nightly_batch"),
        data_interval_start=info.data_interval.start,
        data_interval_end=info.data_interval.end,
        logical_date=info.logical_date,
        run_after=info.run_after,
    )

    result = sensor.poke(context)

    assert result.is_done is (want is not None)
    if want is not None:
        assert pendulum.parse(result.xcom_value) == want


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_sensor_night_is_the_run_day_in_tokyo(get_dag, dag_id):
    # The night whose batch a run waits for is its day in Asia/Tokyo, for every run of a
    # week, scheduled or backfilled.
    from looker_rerun_common import run_night

    dag = get_dag(dag_id)
    runs = scheduled_runs(dag, "2026-11-23", 7) + backfill_runs(
        dag, "2026-11-25T00:00:00+09:00", "2026-11-27T23:59:59+09:00"
    )
    for info in runs:
        context = {"params": {}, "data_interval_end": info.data_interval.end}
        assert run_night(context) == info.run_after.in_timezone("Asia/Tokyo").date(), info


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_backfill_of_one_missed_day(get_dag, dag_id):
    # The README's command for the run of 27 Nov 2026 (JST):
    #   airflow backfill create --dag-id looker_rerun \
    #     --from-date 2026-11-27T00:00:00+09:00 --to-date 2026-11-27T23:59:59+09:00
    # creates exactly that day's run, over the 24 hours before 10:00 JST that day, the
    # same window as the scheduler would have given it.
    dag = get_dag(dag_id)
    infos = backfill_runs(dag, "2026-11-27T00:00:00+09:00", "2026-11-27T23:59:59+09:00")
    assert [(i.data_interval.start, i.data_interval.end) for i in infos] == [
        (pendulum.datetime(2026, 11, 26, 1, tz="UTC"), pendulum.datetime(2026, 11, 27, 1, tz="UTC"))
    ]
    assert infos[0].run_after == pendulum.datetime(2026, 11, 27, 10, tz="Asia/Tokyo")
    # Its logical date (the run's "date" in the UI and CLI) is the window start, 10:00 JST
    # the day before.
    assert infos[0].logical_date == pendulum.datetime(2026, 11, 26, 10, tz="Asia/Tokyo")
    assert infos[0].data_interval == scheduled_interval(dag, "2026-11-27").data_interval


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
