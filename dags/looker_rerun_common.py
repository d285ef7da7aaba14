"""Shared pieces of the looker-rerun DAGs (no DAG is defined here).

Imported by ``looker_rerun.py`` (KubernetesPodOperator) and ``looker_rerun_docker.py``
(DockerOperator). It imports neither provider, so a Docker-only deployment can leave
``looker_rerun.py`` (and the cncf-kubernetes provider) out. Airflow puts the DAG bundle's
root on ``sys.path`` both when it parses the files and when a worker runs a task, so a
plain ``import looker_rerun_common`` works.
The DAG processor parses this file too and finds no DAG in it. (No ``.airflowignore``
entry for it: with Airflow 3.3.2 and pathspec 1.x every glob-syntax ignore pattern raises
a DeprecationWarning from Airflow's file discovery on each parse.)

When it runs
------------
The nightly batch refreshes the warehouse after midnight (Asia/Tokyo); Looker delivers
the scheduled reports built on it until about 09:00; the re-run runs at 10:00 Asia/Tokyo
and re-sends, once, every delivery that failed in the 24 hours before (less a margin for
System Activity's lag, below).

* ``CronTriggerTimetable("0 10 * * *", interval=24h)``: one run per day, started at
  10:00 Asia/Tokyo, whose data interval is the 24 hours before it, 10:00-10:00 JST
  (01:00Z-01:00Z). Each run's interval starts where the previous one ended, so every
  failure falls in exactly one scheduled run's window: one that happened after 10:00 is
  the next morning's. The binary counts on that too: a failure whose plan's next delivery
  is still running when it looks is left to the run whose window holds that delivery.
  (A bare cron string would give Airflow 3's default CronTriggerTimetable with an empty
  interval, start == end: no window to hand the container, nothing for ``airflow
  backfill`` of a missed day to cover.) The run's logical date is its interval's start,
  10:00 JST the day before.
* The container's window is the data interval moved ACTIVITY_MARGIN earlier, both ends,
  so the windows still tile: System Activity shows a delivery seconds to minutes after it
  happened, and the run must only read a stretch of it that has caught up.
* The batch dependency is an Asset, ``NIGHTLY_BATCH_DONE``, that the batch DAG's last task
  lists in its ``outlets``. The first task of the re-run DAG is a sensor that waits for an
  event of that asset from this night: at or after 00:00 Asia/Tokyo of the run's day. Why
  not ``schedule=NIGHTLY_BATCH_DONE``:
  an asset-triggered run starts the moment the batch ends (around 03:00, before Looker
  has even tried most deliveries) and has no data interval, so it cannot be backfilled.
  Why not an ExternalTaskSensor on the batch DAG: it has to know the batch DAG's id and
  the offset between the two schedules (execution_delta), and breaks silently when the
  batch is moved; the asset only requires the batch to say "done".
"""

from __future__ import annotations

import datetime
import json

import pendulum

from airflow.sdk import Asset, BaseSensorOperator, CronTriggerTimetable, Param, PokeReturnValue, task
from airflow.sdk.exceptions import AirflowFailException

TIMEZONE = "Asia/Tokyo"

# The run starts at 10:00 Asia/Tokyo, an hour after Looker's delivery cut-off (09:00).
SCHEDULE_CRON = "0 10 * * *"
# ...and looks at the 24 hours before it: each run's data interval starts where the
# previous one ended, so every failure is examined by exactly one scheduled run.
WINDOW = datetime.timedelta(hours=24)

SCHEDULE = CronTriggerTimetable(SCHEDULE_CRON, timezone=TIMEZONE, interval=WINDOW)

# The run's night began at 00:00 Asia/Tokyo, this long before its scheduled start (the
# data interval end). The nightly batch starts after midnight, so only a batch event from
# then on is this night's; the 24-hour window also holds yesterday's batch.
MIDNIGHT_TO_RUN = datetime.timedelta(hours=10)

# System Activity shows a delivery seconds to minutes after it happened. The container's
# window is the data interval moved this much earlier (both ends, so consecutive windows
# still tile), so it ends at least this long before the task starts, and the run reads
# only a stretch of System Activity that has caught up. The same duration is the
# container's RERUN_CONFIRM, the binary's bound on that lag: how long it waits for a job
# to show there. They must agree: with a margin shorter than RERUN_CONFIRM, a failure just
# before the window's end may not show yet when the run reads it, and no later run looks
# again (the next window starts after it). Raise both together, by changing this.
ACTIVITY_MARGIN = datetime.timedelta(minutes=2)

START_DATE = pendulum.datetime(2026, 1, 1, tz=TIMEZONE)

# The nightly batch DAG marks a successful warehouse refresh by listing this asset in the
# outlets of its last task:
#
#     @task(outlets=[Asset("nightly_batch_warehouse")])
#     def publish(): ...
#
# An asset is identified by its name and URI (which defaults to the name): the batch DAG
# must declare exactly this one, or import NIGHTLY_BATCH_DONE from this module.
NIGHTLY_BATCH_DONE = Asset("nightly_batch_warehouse")

# How long the sensor waits for the batch after 10:00 before failing the run (the batch is
# then more than 6 hours late, the re-run would deliver stale data, and a person should
# look). Checked every 10 minutes in reschedule mode, so the wait costs no worker slot.
BATCH_WAIT_TIMEOUT = datetime.timedelta(hours=6)
BATCH_POKE_INTERVAL = datetime.timedelta(minutes=10)

# Task-level settings shared by the re-run tasks.
#
# retries=1: the binary already retries Looker API calls (429/5xx, timeouts) itself, so an
# Airflow retry is only for what it cannot handle: the pod evicted or its node lost, the
# image pull failing once. More would mostly repeat a settings error (exit 2) or a deliberate
# "needs a person" result (exit 1). A retry is safe: a second run over the same window
# delivers nothing twice (tests/dags/test_e2e_podman.py plays the pod twice to check).
RETRIES = 1
RETRY_DELAY = datetime.timedelta(minutes=10)
# A full run is seconds to a few minutes (it waits for the re-runs it started); 30 minutes
# means something is stuck.
EXECUTION_TIMEOUT = datetime.timedelta(minutes=30)

DEFAULT_IMAGE = "ghcr.io/looker-rerun/looker-rerun:latest"

# Run-time settings: a DAG param (set when triggering a run) wins over the Airflow
# Variable (deployment-wide), which wins over the default. The base URL has no default:
# without the param or the Variable the binary exits 2 naming LOOKERSDK_BASE_URL.
IMAGE_TEMPLATE = "{{ params.image or var.value.get('looker_rerun_image', '" + DEFAULT_IMAGE + "') }}"
BASE_URL_TEMPLATE = "{{ params.looker_base_url or var.value.get('looker_rerun_base_url', '') }}"

# The window handed to the binary, RFC 3339 in UTC: the run's data interval less
# ACTIVITY_MARGIN, unless the run was triggered with explicit ``since``/``until`` params,
# which are the caller's window and used as given.
SINCE_TEMPLATE = "{{ params.since or window_bound(data_interval_start) }}"
UNTIL_TEMPLATE = "{{ params.until or window_bound(data_interval_end) }}"
DRY_RUN_TEMPLATE = "{{ 'true' if params.dry_run else 'false' }}"

# Where the binary writes its one-line JSON summary: the KubernetesPodOperator's XCom
# sidecar reads this file and pushes it as the task's return value.
RESULT_FILE = "/airflow/xcom/return.json"


def rfc3339_utc(value: datetime.datetime | None) -> str:
    """Format an aware datetime as RFC 3339 in UTC with a Z suffix, e.g. 2026-11-27T15:00:00Z."""
    if value is None:
        raise ValueError("the run has no data interval; trigger it with the since/until params")
    return pendulum.instance(value).in_timezone("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def window_bound(value: datetime.datetime | None) -> str:
    """A data interval bound as the container's window bound: ACTIVITY_MARGIN earlier, RFC 3339 UTC."""
    if value is None:
        return rfc3339_utc(None)  # raises, saying how to run without a data interval
    return rfc3339_utc(value - ACTIVITY_MARGIN)


def go_duration(value: datetime.timedelta) -> str:
    """A positive whole number of seconds as a Go duration (time.ParseDuration), e.g. 2m, 1m30s."""
    seconds = value.total_seconds()
    if seconds <= 0 or seconds != int(seconds):
        raise ValueError(f"go duration of {value}: must be a positive whole number of seconds")
    hours, rest = divmod(int(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n)


USER_DEFINED_MACROS = {"window_bound": window_bound}


def dag_params(*, with_base_url: bool = True) -> dict[str, Param]:
    """Params of the re-run DAGs. All optional; the defaults make a normal scheduled run."""
    params = {
        "since": Param(
            None,
            type=["null", "string"],
            description="Start of the window, RFC 3339 (e.g. 2026-11-27T01:00:00Z), used as given. "
            f"Empty: the run's data interval start less {go_duration(ACTIVITY_MARGIN)}.",
        ),
        "until": Param(
            None,
            type=["null", "string"],
            description="End of the window, RFC 3339, used as given. "
            f"Empty: the run's data interval end less {go_duration(ACTIVITY_MARGIN)}.",
        ),
        "dry_run": Param(False, type="boolean", description="List what would be re-run without re-running it."),
        "image": Param(
            None,
            type=["null", "string"],
            description=f"looker-rerun image. Empty: the Airflow Variable looker_rerun_image, else {DEFAULT_IMAGE}.",
        ),
    }
    if with_base_url:
        params["looker_base_url"] = Param(
            None,
            type=["null", "string"],
            description="Looker API base URL. Empty: the Airflow Variable looker_rerun_base_url.",
        )
    return params


def rerun_env(base_url: str = BASE_URL_TEMPLATE) -> dict[str, str]:
    """Plain (non-secret) environment of the container. Credentials are never in here."""
    return {
        "LOOKERSDK_BASE_URL": base_url,
        "LOOKERSDK_VERIFY_SSL": "true",
        "LOOKERSDK_TIMEOUT": "120",
        "RERUN_SINCE": SINCE_TEMPLATE,
        "RERUN_UNTIL": UNTIL_TEMPLATE,
        # System Activity's lag, the margin the window leaves before the task starts.
        "RERUN_CONFIRM": go_duration(ACTIVITY_MARGIN),
        "RERUN_DRY_RUN": DRY_RUN_TEMPLATE,
        "RERUN_RESULT_FILE": RESULT_FILE,
        # Wait for the re-runs to be delivered, so the task fails (and alerts) when one
        # failed again or is stuck, and succeeds only when everything arrived. It returns
        # as soon as all have finished; 15 minutes stays well inside EXECUTION_TIMEOUT.
        "RERUN_WAIT": "15m",
        # A run that needs a person exits 0 rather than 1, so the operator pushes its
        # summary as the XCom; check_summary then fails the run from the summary's
        # exit_code. (Exit 2 and 3 are unchanged and fail the container task.)
        "RERUN_NEEDS_PERSON_EXIT_CODE": "0",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
    }


class NightlyBatchSensor(BaseSensorOperator):
    """Wait until this night's batch has published NIGHTLY_BATCH_DONE.

    This night starts at 00:00 Asia/Tokyo of the run's day, MIDNIGHT_TO_RUN before the
    data interval end; an event at or after it counts, also one after 10:00: a batch that
    finished late still means the warehouse is fresh, and the re-run should go ahead. Not
    the data interval start: the 24-hour window also holds yesterday's batch, late or not.
    The event's timestamp becomes the task's XCom.

    (A BaseSensorOperator subclass rather than ``@task.sensor``: in Airflow 3.3 with
    apache-airflow-providers-standard 1.21 the decorator's PythonSensor import raises an
    Airflow deprecation warning at parse time.)
    """

    def __init__(self, *, asset=NIGHTLY_BATCH_DONE, **kwargs):
        kwargs.setdefault("inlets", [asset])
        super().__init__(**kwargs)
        self.asset = asset

    def poke(self, context) -> PokeReturnValue:
        end = context["data_interval_end"]
        night = rfc3339_utc(end - MIDNIGHT_TO_RUN if end is not None else None)
        # The execution API's "after" is inclusive (timestamp >= after).
        events = list(context["inlet_events"][self.asset].after(night).ascending(True).limit(1))
        if not events:
            self.log.info("No %s event since %s yet", self.asset.name, night)
            return PokeReturnValue(is_done=False)
        self.log.info("%s published at %s", self.asset.name, events[0].timestamp)
        return PokeReturnValue(is_done=True, xcom_value=events[0].timestamp.isoformat())


def wait_for_nightly_batch_task() -> NightlyBatchSensor:
    """The sensor task, as the first task of a re-run DAG (call inside the DAG context)."""
    return NightlyBatchSensor(
        task_id="wait_for_nightly_batch",
        mode="reschedule",
        poke_interval=BATCH_POKE_INTERVAL,
        timeout=BATCH_WAIT_TIMEOUT,
        # A sensor timeout is final; a retry would only wait another 6 hours.
        retries=0,
    )


# Re-run outcomes that mean the report did not (yet) arrive.
UNDELIVERED_OUTCOMES = ("failed_again", "running", "unconfirmed")


def summary_problems(summary: dict) -> list[str]:
    """One line per plan in the summary that needs a person, saying which and why."""

    def plan(entry):
        name = entry.get("name")
        return f"plan {entry.get('plan_id')}" + (f" ({name})" if name else "")

    problems = []
    for e in summary.get("needs_person") or []:
        owner = f", owner {e['owner']}" if e.get("owner") else ""
        detail = f": {e['detail']}" if e.get("detail") else ""
        problems.append(f"needs a person: {plan(e)}{owner}: {e.get('reason')}{detail}")
    for e in summary.get("failed") or []:
        status = f" (HTTP {e['status']})" if e.get("status") else ""
        problems.append(f"re-run failed: {plan(e)}{status}: {e.get('error')}")
    for e in summary.get("rerun") or []:
        if e.get("outcome") in UNDELIVERED_OUTCOMES:
            detail = f": {e['outcome_detail']}" if e.get("outcome_detail") else ""
            problems.append(f"re-run {e['outcome']}: {plan(e)}, copy {e.get('new_plan_id')}{detail}")
    for e in summary.get("skipped") or []:
        # An earlier run's copy, waited for as this run's own.
        if e.get("outcome") in UNDELIVERED_OUTCOMES:
            detail = f": {e['outcome_detail']}" if e.get("outcome_detail") else ""
            problems.append(f"earlier re-run {e['outcome']}: {plan(e)}, copy {e.get('new_plan_id')}{detail}")
    for e in summary.get("in_progress") or []:
        detail = f": {e['detail']}" if e.get("detail") else ""
        problems.append(f"in progress: {plan(e)}: {e.get('outcome')}{detail}")
    if summary.get("not_attempted"):
        problems.append("not attempted (the run was stopped): plans " + ", ".join(map(str, summary["not_attempted"])))
    if summary.get("error"):
        problems.append(f"error: {summary['error']}")
    return problems


def check(summary, *, label: str = "") -> dict:
    """Raise AirflowFailException unless the summary says the run needs no one.

    ``summary`` is the re-run task's XCom: the binary's one-line JSON summary, as a dict
    (or its text). The binary's ``exit_code`` decides; a summary without one (a binary
    older than RERUN_NEEDS_PERSON_EXIT_CODE) fails when it lists any problem.
    """
    where = f"{label}: " if label else ""
    if isinstance(summary, (str, bytes)):
        try:
            summary = json.loads(summary)
        except ValueError:
            summary = None
    if not isinstance(summary, dict):
        raise AirflowFailException(f"{where}the re-run task left no summary in its XCom (got {summary!r})")
    problems = summary_problems(summary)
    code = summary.get("exit_code")
    if code == 0 or (code is None and not problems):
        return summary
    if not problems:
        problems = ["the summary names no plan; see the re-run task's log"]
    raise AirflowFailException(
        f"{where}looker-rerun needs a person (exit_code {code}):\n" + "\n".join(f"- {p}" for p in problems)
    )


@task(task_id="check_summary", retries=0)
def check_summary(summary) -> None:
    """Fail the run, naming the plans and why, when the re-run needs a person.

    Call it on the re-run task's output inside the DAG: ``check_summary(rerun.output)``.
    """
    check(summary)


@task(task_id="check_summary", retries=0)
def check_summaries(summaries, names: list[str]) -> None:
    """check_summary for a mapped re-run task: one summary per instance, in map order."""
    problems = []
    for name, summary in zip(names, summaries, strict=True):
        try:
            check(summary, label=name)
        except AirflowFailException as err:
            problems.append(str(err))
    if problems:
        raise AirflowFailException("\n".join(problems))
