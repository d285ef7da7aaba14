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
            ["not attempted (the run was stopped): plans 111, 112", "error: stopped by SIGTERM"],
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


def test_instances_are_named_in_the_multi_dag():
    from airflow.sdk.exceptions import AirflowFailException

    import looker_rerun_common

    bad = summary(exit_code=1, needs_person=[{"plan_id": "105", "name": "Inventory", "reason": "permanent"}])
    with pytest.raises(AirflowFailException) as err:
        looker_rerun_common.check_summaries.function([CLEAN, bad], names=["prod", "emea"])
    assert str(err.value).startswith("emea: looker-rerun needs a person"), str(err.value)
    assert "prod" not in str(err.value)
    looker_rerun_common.check_summaries.function([CLEAN, CLEAN], names=["prod", "emea"])
