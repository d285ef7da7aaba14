"""Every failure is examined by exactly one scheduled run: the windows tile.

Over a week of runs, some made by the scheduler and some by a backfill, each run's window
starts where the previous one ended, with no gap and no overlap: first the data
intervals, then RERUN_SINCE/RERUN_UNTIL as each DAG's re-run task renders them for its
container. And each window ends ACTIVITY_MARGIN before the run starts, the same duration
as the container's RERUN_CONFIRM.
"""

from __future__ import annotations

import datetime
import re

import pendulum
import pytest

from conftest import backfill_runs, build_pod, render, scheduled_runs

DAG_IDS = ["looker_rerun", "looker_rerun_multi", "looker_rerun_docker"]
DAY = datetime.timedelta(hours=24)

# The week of Mon 23 to Sun 29 Nov 2026: the scheduler ran on the 23rd and 24th, was down
# from the 25th to the 27th, and those days were backfilled, as the README says:
#   airflow backfill create --dag-id ... \
#     --from-date 2026-11-25T00:00:00+09:00 --to-date 2026-11-27T23:59:59+09:00
FIRST_DAY = "2026-11-23"
BACKFILL = ("2026-11-25T00:00:00+09:00", "2026-11-27T23:59:59+09:00")


def week_of_runs(dag):
    """The week's runs in order: scheduled, backfilled, scheduled."""
    scheduled = scheduled_runs(dag, FIRST_DAY, 7)
    backfilled = backfill_runs(dag, *BACKFILL)
    # The backfill makes exactly the runs the scheduler missed, with the same windows.
    assert [i.data_interval for i in backfilled] == [i.data_interval for i in scheduled[2:5]]
    return scheduled[:2] + backfilled + scheduled[5:]


def assert_tiles(windows):
    """Consecutive (since, until) windows: each 24 hours, each starting where the one
    before ended."""
    for since, until in windows:
        assert until - since == DAY, (since, until)
    gaps = [(a[1], b[0]) for a, b in zip(windows, windows[1:]) if a[1] != b[0]]
    assert gaps == [], f"windows that do not meet (until, next since): {gaps}"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_data_intervals_tile_over_a_week_with_a_backfill(get_dag, dag_id):
    runs = week_of_runs(get_dag(dag_id))

    assert [i.run_after for i in runs] == [
        pendulum.datetime(2026, 11, day, 10, tz="Asia/Tokyo") for day in range(23, 30)
    ]
    assert_tiles([(i.data_interval.start, i.data_interval.end) for i in runs])
    # From 10:00 JST the day before the first run to the last run's start: the whole week.
    assert runs[0].data_interval.start == pendulum.datetime(2026, 11, 22, 10, tz="Asia/Tokyo")
    assert runs[-1].data_interval.end == runs[-1].run_after


def parse_go_duration(text):
    """A Go duration of hours, minutes and seconds (2m, 1m30s, 1h) as a timedelta."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    assert parts and text, f"not a Go duration of h/m/s: {text!r}"
    hours, minutes, seconds = (int(p or 0) for p in parts.groups())
    return datetime.timedelta(hours=hours, minutes=minutes, seconds=seconds)


def container_env(dag, info, map_index):
    """The plain environment the container of the DAG's re-run task gets in the run
    ``info``, rendered as on a worker: the pod's env for KubernetesPodOperator, the
    environment for DockerOperator."""
    task, context = render(
        dag.get_task("rerun_failed_deliveries"),
        data_interval_start=info.data_interval.start,
        data_interval_end=info.data_interval.end,
        logical_date=info.logical_date,
        run_after=info.run_after,
        map_index=map_index,
    )
    if dag.dag_id == "looker_rerun_docker":
        return dict(task.environment)
    base = next(c for c in build_pod(task, context).spec.containers if c.name == "base")
    return {e.name: e.value for e in base.env if e.value_from is None}


@pytest.mark.parametrize(
    ("dag_id", "map_index"),
    [
        pytest.param("looker_rerun", -1, id="KubernetesPodOperator"),
        pytest.param("looker_rerun_multi", 0, id="mapped KubernetesPodOperator, prod"),
        pytest.param("looker_rerun_multi", 1, id="mapped KubernetesPodOperator, emea"),
        pytest.param("looker_rerun_docker", -1, id="DockerOperator"),
    ],
)
def test_container_windows_tile_and_end_a_margin_before_the_run(get_dag, supervisor_comms, dag_id, map_index):
    from looker_rerun_common import ACTIVITY_MARGIN

    dag = get_dag(dag_id)
    runs = week_of_runs(dag)
    envs = [container_env(dag, info, map_index) for info in runs]
    windows = [(pendulum.parse(e["RERUN_SINCE"]), pendulum.parse(e["RERUN_UNTIL"])) for e in envs]

    assert_tiles(windows)
    for info, env, (since, until) in zip(runs, envs, windows):
        # RFC 3339 in UTC, as the binary reads it.
        assert env["RERUN_UNTIL"].endswith("Z") and env["RERUN_SINCE"].endswith("Z"), env
        # The data interval, ACTIVITY_MARGIN earlier: System Activity has had that long
        # to show the window's last delivery by the time the run starts.
        assert (since, until) == (
            info.data_interval.start - ACTIVITY_MARGIN,
            info.data_interval.end - ACTIVITY_MARGIN,
        ), info
        assert until <= info.run_after - ACTIVITY_MARGIN, info
        # ...which is how long the binary trusts System Activity to take.
        assert parse_go_duration(env["RERUN_CONFIRM"]) == ACTIVITY_MARGIN, env
    assert ACTIVITY_MARGIN > datetime.timedelta(0)


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (datetime.timedelta(minutes=2), "2m"),
        (datetime.timedelta(seconds=90), "1m30s"),
        (datetime.timedelta(seconds=45), "45s"),
        (datetime.timedelta(hours=1), "1h"),
        (datetime.timedelta(hours=1, seconds=1), "1h1s"),
    ],
)
def test_go_duration(value, want):
    from looker_rerun_common import go_duration

    assert go_duration(value) == want
    assert parse_go_duration(go_duration(value)) == value


@pytest.mark.parametrize(
    "value", [datetime.timedelta(0), datetime.timedelta(seconds=-60), datetime.timedelta(milliseconds=1500)]
)
def test_go_duration_needs_positive_whole_seconds(value):
    from looker_rerun_common import go_duration

    with pytest.raises(ValueError):
        go_duration(value)
