"""Every failure is examined by exactly one scheduled run: the windows tile.

Over a week of runs, some made by the scheduler and some by a backfill, each run's window
starts where the previous one ended, with no gap and no overlap.
"""

from __future__ import annotations

import datetime

import pendulum
import pytest

from conftest import backfill_runs, scheduled_runs

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
