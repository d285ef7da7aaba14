"""check_summary: the task after the re-run that fails the run, naming the plans and why."""

from __future__ import annotations

import json

import pytest

CLEAN = {
    "window": {"since": "2026-11-27T15:00:00Z", "until": "2026-11-28T01:00:00Z"},
    "source": "system_activity",
    "dry_run": False,
    "rerun": [{"plan_id": "101", "name": "Daily revenue", "new_plan_id": "90002", "outcome": "delivered"}],
    "skipped": [{"plan_id": "102", "name": "Orders by region", "reason": "later_success"}],
    "failed": [],
    "not_attempted": [],
    "needs_person": [],
    "exit_code": 0,
}


def summary(**fields):
    return {**CLEAN, **fields}


def fail_message(value, **kwargs):
    from airflow.sdk.exceptions import AirflowFailException

    from looker_rerun_common import check

    with pytest.raises(AirflowFailException) as err:
        check(value, **kwargs)
    return str(err.value)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(CLEAN, id="dict"),
        pytest.param(json.dumps(CLEAN), id="summary line"),
        pytest.param({k: v for k, v in CLEAN.items() if k != "exit_code"}, id="older binary, nothing to report"),
    ],
)
def test_clean_run_passes(value):
    from looker_rerun_common import check

    assert check(value)["rerun"] == CLEAN["rerun"]


@pytest.mark.parametrize(
    ("value", "want"),
    [
        pytest.param(
            summary(
                exit_code=1,
                needs_person=[
                    {
                        "plan_id": "105",
                        "name": "Inventory",
                        "owner": "analyst@example.com",
                        "reason": "permanent",
                        "detail": 'a re-run cannot fix "Webhook answered 502"',
                    }
                ],
            ),
            [
                "exit_code 1",
                'needs a person: plan 105 (Inventory), owner analyst@example.com: permanent: '
                'a re-run cannot fix "Webhook answered 502"',
            ],
            id="needs_person",
        ),
        pytest.param(
            summary(
                exit_code=1,
                failed=[{"plan_id": "9", "name": "Board pack", "status": 403, "error": "looker: forbidden"}],
            ),
            ["re-run failed: plan 9 (Board pack) (HTTP 403): looker: forbidden"],
            id="failed",
        ),
        pytest.param(
            summary(
                exit_code=1,
                rerun=[
                    {"plan_id": "101", "name": "Daily revenue", "new_plan_id": "90002", "outcome": "delivered"},
                    {"plan_id": "105", "name": "Inventory", "new_plan_id": "90001", "outcome": "failed_again",
                     "outcome_detail": "Webhook answered 502"},
                    {"plan_id": "107", "name": "Signups", "new_plan_id": "90003", "outcome": "running"},
                    {"plan_id": "108", "name": "Funnel", "new_plan_id": "90004", "outcome": "unconfirmed"},
                ],
            ),  # fmt: skip
            [
                "re-run failed_again: plan 105 (Inventory), copy 90001: Webhook answered 502",
                "re-run running: plan 107 (Signups), copy 90003",
                "re-run unconfirmed: plan 108 (Funnel), copy 90004",
            ],
            id="undelivered re-runs",
        ),
        pytest.param(
            summary(
                exit_code=1,
                skipped=[
                    {"plan_id": "103", "name": "Funnel", "reason": "already_rerun", "new_plan_id": "9103",
                     "outcome": "failed_again", "outcome_detail": "SMTP 451"},
                ],
            ),  # fmt: skip
            ["earlier re-run failed_again: plan 103 (Funnel), copy 9103: SMTP 451"],
            id="an earlier run's copy failed again",
        ),
        pytest.param(
            summary(
                exit_code=1,
                in_progress=[{"plan_id": "110", "name": "Ops", "outcome": "running", "detail": "since 09:58"}],
            ),
            ["in progress: plan 110 (Ops): running: since 09:58"],
            id="in_progress",
        ),
        pytest.param(
            summary(exit_code=1, not_attempted=["111", "112"], error="stopped by SIGTERM"),
            ["2 plans not attempted (the run was stopped): 111, 112", "error: stopped by SIGTERM"],
            id="stopped",
        ),
        pytest.param(
            summary(exit_code=1),
            ["exit_code 1", "the summary names no plan"],
            id="exit 1 naming no plan (result file not written)",
        ),
        pytest.param(
            {k: v for k, v in CLEAN.items() if k != "exit_code"}
            | {"needs_person": [{"plan_id": "105", "name": "Inventory", "reason": "permanent"}]},
            ["exit_code None", "needs a person: plan 105 (Inventory): permanent"],
            id="older binary without exit_code",
        ),
        pytest.param(None, ["no summary"], id="no XCom"),
        pytest.param("INF looker-rerun done", ["no summary"], id="not JSON"),
    ],
)
def test_fails_naming_each_plan_and_why(value, want):
    message = fail_message(value)
    for part in want:
        assert part in message, message
    # The delivered re-run is not a problem.
    assert "Daily revenue" not in message


def test_long_lists_are_grouped_and_capped():
    # A run stopped at its deadline with 2,052 plans left, and 25 that need a person: the
    # message counts them and shows the first few; the summary (XCom) has them all.
    from looker_rerun_common import IDS_CAP, LIST_CAP

    needs_person = [{"plan_id": str(100 + i), "reason": "permanent"} for i in range(25)]
    message = fail_message(
        summary(exit_code=4, not_attempted=[str(3001 + i) for i in range(2052)], needs_person=needs_person)
    )
    lines = message.splitlines()

    assert "- 2,052 plans not attempted (the run was stopped): " + ", ".join(
        str(3001 + i) for i in range(IDS_CAP)
    ) + ", … and 2,040 more" in lines, message
    person_lines = [line for line in lines if line.startswith("- needs a person: ")]
    assert [line.split(":")[1].strip() for line in person_lines] == [f"plan {100 + i}" for i in range(LIST_CAP)]
    assert "- … and 15 more plans that need a person" in lines, message
    assert len(lines) == 1 + LIST_CAP + 2, message


class FakeTI:
    """The two things check_summaries asks of its task instance: the mapped re-run task's
    XCom per map index, and its task states, keyed as the execution API keys them."""

    dag_id = "looker_rerun_multi"
    run_id = "scheduled__2026-11-27T01:00:00+00:00"

    def __init__(self, xcoms: dict[int, object], states: dict[str, str]):
        self.xcoms, self.states = xcoms, states

    def xcom_pull(self, task_ids, map_indexes):
        assert task_ids == "rerun_failed_deliveries"
        return self.xcoms.get(map_indexes)

    def get_task_states(self, dag_id, task_ids, run_ids):
        assert (dag_id, task_ids, run_ids) == (self.dag_id, ["rerun_failed_deliveries"], [self.run_id])
        return {self.run_id: self.states}


def multi_message(ti, names):
    from airflow.sdk.exceptions import AirflowFailException

    import looker_rerun_common

    with pytest.raises(AirflowFailException) as err:
        looker_rerun_common.check_summaries.function(names=names, ti=ti)
    return str(err.value)


BAD = summary(exit_code=1, needs_person=[{"plan_id": "105", "name": "Inventory", "reason": "permanent"}])


@pytest.mark.parametrize(
    ("xcoms", "states", "want"),
    [
        pytest.param(
            {0: CLEAN, 1: BAD},
            {"rerun_failed_deliveries_0": "success", "rerun_failed_deliveries_1": "success"},
            ["emea: looker-rerun needs a person (exit_code 1):\n- needs a person: plan 105 (Inventory): permanent"],
            id="one needs a person",
        ),
        pytest.param(
            {1: BAD},
            {"rerun_failed_deliveries_0": "failed", "rerun_failed_deliveries_1": "success"},
            [
                "prod: the re-run left no summary: rerun_failed_deliveries [prod] ended failed",
                "emea: looker-rerun needs a person (exit_code 1)",
            ],
            id="one failed, one needs a person",
        ),
        pytest.param(
            {0: summary(exit_code=3, error="looker: log in: HTTP 401")},
            {"rerun_failed_deliveries_0": "failed", "rerun_failed_deliveries_1": "upstream_failed"},
            [
                "prod: looker-rerun needs a person (exit_code 3):\n- error: looker: log in: HTTP 401",
                "emea: the re-run left no summary: rerun_failed_deliveries [emea] ended upstream_failed",
            ],
            id="a failed instance's summary is read",
        ),
        pytest.param(
            {},
            {"rerun_failed_deliveries": "upstream_failed"},
            [
                "prod: the re-run left no summary: rerun_failed_deliveries [prod] ended upstream_failed",
                "emea: the re-run left no summary: rerun_failed_deliveries [emea] ended upstream_failed",
            ],
            id="never expanded",
        ),
    ],
)
def test_multi_check_names_every_instance(xcoms, states, want):
    message = multi_message(FakeTI(xcoms, states), ["prod", "emea"])
    for part in want:
        assert part in message, message
    assert message.count("\n") >= len(want) - 1


def test_multi_check_passes_when_every_instance_is_clean():
    import looker_rerun_common

    states = {"rerun_failed_deliveries_0": "success", "rerun_failed_deliveries_1": "success"}
    looker_rerun_common.check_summaries.function(names=["prod", "emea"], ti=FakeTI({0: CLEAN, 1: CLEAN}, states))


def test_single_check_names_the_task_state_without_a_summary():
    import looker_rerun_common

    ti = FakeTI({}, {"rerun_failed_deliveries": "failed"})
    ti.xcom_pull = lambda task_ids, map_indexes: {-1: None}[map_indexes]
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException) as err:
        looker_rerun_common.check_summary.function(ti=ti)
    assert str(err.value) == "the re-run left no summary: rerun_failed_deliveries ended failed"
