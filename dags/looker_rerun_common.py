"""Shared pieces of the looker-rerun DAGs (no DAG is defined here).

One module on purpose, though long: Airflow puts only the DAG bundle's root on sys.path, so
each extra module is one more file a deployment must copy beside the DAGs; this one holds,
in order, the schedule and window, the params and their check, the batch sensor, the
summary's reader and checks, and the alerts (``alert_message``), each section headed.

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
  lists in its ``outlets``. After check_params, the re-run DAG's sensor waits for an event
  of that asset from this night's batch: one whose batch run was due on the run's day
  (Asia/Tokyo), see NightlyBatchSensor. Why not ``schedule=NIGHTLY_BATCH_DONE``:
  an asset-triggered run starts the moment the batch ends (around 03:00, before Looker
  has even tried most deliveries) and has no data interval, so it cannot be backfilled.
  Why not an ExternalTaskSensor on the batch DAG: it has to know the batch DAG's id and
  the offset between the two schedules (execution_delta), and breaks silently when the
  batch is moved; the asset only requires the batch to say "done".
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import json
import logging
import re
import urllib.parse

import pendulum

from airflow.sdk import (
    Asset,
    BaseSensorOperator,
    Connection,
    CronTriggerTimetable,
    Param,
    PokeReturnValue,
    Variable,
    task,
)
from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowNotFoundException,
    AirflowSensorTimeout,
    AirflowTaskTimeout,
)

TIMEZONE = "Asia/Tokyo"

# The run starts at 10:00 Asia/Tokyo, an hour after Looker's delivery cut-off (09:00).
SCHEDULE_CRON = "0 10 * * *"
# ...and looks at the 24 hours before it: each run's data interval starts where the
# previous one ended, so every failure is examined by exactly one scheduled run.
WINDOW = datetime.timedelta(hours=24)

SCHEDULE = CronTriggerTimetable(SCHEDULE_CRON, timezone=TIMEZONE, interval=WINDOW)

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
# The binary stops at RERUN_DEADLINE after its start, lists what it did not attempt and
# writes its summary (exit 4), so a run past its time still says what it left undone
# instead of being killed mid-way by execution_timeout. The margin covers what
# execution_timeout counts and the binary does not: the pod's start (up to the pod
# operator's startup_timeout_seconds, 5 minutes, when a node must scale up or pull the
# image) and, after the deadline, logging out and writing the summary (seconds).
POD_STARTUP_TIMEOUT = datetime.timedelta(minutes=5)
DEADLINE_MARGIN = POD_STARTUP_TIMEOUT + datetime.timedelta(minutes=1)
RERUN_DEADLINE = EXECUTION_TIMEOUT - DEADLINE_MARGIN
# How long the binary waits for its re-runs to be delivered; inside RERUN_DEADLINE.
RERUN_WAIT = datetime.timedelta(minutes=15)

# The result tmpfs of the Docker DAG must hold the largest summary a run can write.
# Measured: 5,000 plans make about 700 KB (140 bytes a plan). A plan's entry is bounded
# by its longest fields, a 255-character plan name and Looker's status detail (an error
# text, taken as up to 1 KiB), with ids, times and keys: about 1.6 KB. 5,000 such plans
# are 8 MB: 8 MiB, also about 12 times the measured size. A tmpfs counts against the
# container's memory limit only as far as it is filled.
RESULT_TMPFS_BYTES = 8 << 20

DEFAULT_IMAGE = "ghcr.io/looker-rerun/looker-rerun:latest"

# Deployment settings, Airflow Variables (the deployment sets them, a triggered run cannot).
# What a run may reach and with which image is decided here, not by whoever triggers it:
# the credentials come from the deployment too, and must go only to the Looker it chose.
VAR_IMAGE = "looker_rerun_image"  # the looker-rerun image; default DEFAULT_IMAGE
VAR_BASE_URL = "looker_rerun_base_url"  # the Looker API base URL; no default (exit 2)
VAR_ALLOW_HTTP = "looker_rerun_allow_http"  # "true": the binary may use plain http
VAR_MAX_WINDOW_HOURS = "looker_rerun_max_window_hours"  # longest window a run may ask for
DEFAULT_MAX_WINDOW_HOURS = 168

IMAGE_TEMPLATE = "{{ var.value.get('" + VAR_IMAGE + "', '" + DEFAULT_IMAGE + "') }}"
BASE_URL_TEMPLATE = "{{ var.value.get('" + VAR_BASE_URL + "', '') }}"
ALLOW_HTTP_TEMPLATE = "{{ 'true' if var.value.get('" + VAR_ALLOW_HTTP + "', 'false') | lower == 'true' else 'false' }}"
# Checked by check_params (a whole number of hours, at least the scheduled window).
MAX_WINDOW_TEMPLATE = "{{ var.value.get('" + VAR_MAX_WINDOW_HOURS + "', '" + str(DEFAULT_MAX_WINDOW_HOURS) + "') }}h"

# The window handed to the binary, RFC 3339 in UTC: the run's data interval less
# ACTIVITY_MARGIN, unless the run was triggered with explicit ``since``/``until`` params,
# which are the caller's window and used as given.
SINCE_TEMPLATE = "{{ params.since or window_bound(data_interval_start) }}"
UNTIL_TEMPLATE = "{{ params.until or window_bound(data_interval_end) }}"
DRY_RUN_TEMPLATE = "{{ 'true' if params.dry_run else 'false' }}"

# Where the binary writes its one-line JSON summary: the KubernetesPodOperator's XCom
# sidecar reads this file and pushes it as the task's return value.
RESULT_FILE = "/airflow/xcom/return.json"

# An RFC 3339 time as the binary reads it (Go's time.RFC3339): date, "T", time to the
# second with optional fraction, and "Z" or an offset. Checked by Airflow when the run
# is created; a wrong value is refused with the schema, which shows the example.
RFC3339_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"
RFC3339_EXAMPLE = "2026-11-27T01:00:00Z"


def rfc3339_utc(value: datetime.datetime | None) -> str:
    """Format an aware datetime as RFC 3339 in UTC with a Z suffix, e.g. 2026-11-27T15:00:00Z."""
    if value is None:
        raise ValueError("the run has no data interval; trigger it with the since/until params")
    return pendulum.instance(value).in_timezone("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def window_bound(value: datetime.datetime | None) -> str:
    """A data interval bound as the container's window bound: ACTIVITY_MARGIN earlier, RFC 3339 UTC."""
    if value is None or not isinstance(value, datetime.datetime):
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


def time_param(end: str) -> Param:
    """The since or until param: empty, or an RFC 3339 time (checked when the run is created)."""
    return Param(
        None,
        type=["null", "string"],
        pattern=RFC3339_PATTERN,
        # Shown with the schema in Airflow's refusal of a bad value.
        examples=[RFC3339_EXAMPLE, "2026-11-27T10:00:00+09:00"],
        description=f"{end.capitalize()} of the window, an RFC 3339 time such as {RFC3339_EXAMPLE}, used as given. "
        f"Empty: the run's data interval {end} less {go_duration(ACTIVITY_MARGIN)}. Required, with the other "
        "bound, for a run without a data interval (triggered without a logical date). The window may be at "
        f"most the Variable {VAR_MAX_WINDOW_HOURS} long ({DEFAULT_MAX_WINDOW_HOURS} hours unless set).",
    )


def dag_params() -> dict[str, Param]:
    """Params of the re-run DAGs: what a triggered run may choose. All optional; the
    defaults make a normal scheduled run. Where the run goes (base URL), what it runs
    (image) and with which credentials are the deployment's (Variables, Secrets,
    Connections), never a param: check_params refuses a run that tries to set them."""
    return {
        "since": time_param("start"),
        "until": time_param("end"),
        "dry_run": Param(False, type="boolean", description="List what would be re-run without re-running it."),
    }


# Keys a triggered run's conf may not hold: they were params once and now belong to the
# deployment. Named in the refusal, so whoever passes one learns where it went.
DEPLOYMENT_SETTINGS = {
    "image": f"the image is the deployment's: the Airflow Variable {VAR_IMAGE}",
    "looker_base_url": f"the Looker URL is the deployment's: the Airflow Variable {VAR_BASE_URL}",
}


def rerun_env(base_url: str = BASE_URL_TEMPLATE) -> dict[str, str]:
    """Plain (non-secret) environment of the container. Credentials are never in here."""
    return {
        "LOOKERSDK_BASE_URL": base_url,
        "LOOKERSDK_VERIFY_SSL": "true",
        "LOOKERSDK_TIMEOUT": "120",
        # Plain http only where the deployment says so (the binary refuses it otherwise,
        # except on loopback); never from a param.
        "RERUN_ALLOW_HTTP": ALLOW_HTTP_TEMPLATE,
        "RERUN_SINCE": SINCE_TEMPLATE,
        "RERUN_UNTIL": UNTIL_TEMPLATE,
        # The binary refuses a longer window too (exit 2), in case check_params is bypassed.
        "RERUN_MAX_WINDOW": MAX_WINDOW_TEMPLATE,
        # System Activity's lag, the margin the window leaves before the task starts.
        "RERUN_CONFIRM": go_duration(ACTIVITY_MARGIN),
        "RERUN_DRY_RUN": DRY_RUN_TEMPLATE,
        "RERUN_RESULT_FILE": RESULT_FILE,
        # Wait for the re-runs to be delivered, so the task fails (and alerts) when one
        # failed again or is stuck, and succeeds only when everything arrived. It returns
        # as soon as all have finished.
        "RERUN_WAIT": go_duration(RERUN_WAIT),
        # Stop with a summary before execution_timeout kills the container (see above).
        "RERUN_DEADLINE": go_duration(RERUN_DEADLINE),
        # A run that needs a person exits 0 rather than 1, so the operator pushes its
        # summary as the XCom; check_summary then fails the run from the summary's
        # exit_code. (Exit 2, 3 and 4 are unchanged and fail the container task.)
        "RERUN_NEEDS_PERSON_EXIT_CODE": "0",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
    }


# --- the checks before anything runs ---------------------------------------------------


def hours(value: datetime.timedelta) -> str:
    """A duration in hours, as the window's limit is set: "168 hours", "36.5 hours"."""
    return f"{value.total_seconds() / 3600:g} hours"


def max_window() -> datetime.timedelta:
    """The longest window a run may ask for: the Variable, else DEFAULT_MAX_WINDOW_HOURS."""
    raw = Variable.get(VAR_MAX_WINDOW_HOURS, default=str(DEFAULT_MAX_WINDOW_HOURS))
    try:
        hours = int(str(raw).strip())
    except ValueError:
        hours = 0
    if hours * 3600 < WINDOW.total_seconds():
        raise AirflowFailException(
            f"the Airflow Variable {VAR_MAX_WINDOW_HOURS} is {raw!r}: it must be a whole number of hours, "
            f"at least {int(WINDOW.total_seconds() // 3600)} (a scheduled run's window), such as {DEFAULT_MAX_WINDOW_HOURS}"
        )
    return datetime.timedelta(hours=hours)


def params_problems(context) -> list[str]:
    """What is wrong with a run's params and conf, one line each; empty when it may go.

    The JSON schema of each param is checked by Airflow when the run is created; what a
    schema cannot say (one param against another, against the run's data interval or a
    deployment setting) is checked here, by the run's first task."""
    problems = []
    conf = context["dag_run"].conf or {}
    # The DAG's own params: the run's (context["params"]) also hold whatever keys the conf
    # brought, params or not.
    declared = set(context["dag"].params)
    for key in sorted(set(conf) - declared):
        why = DEPLOYMENT_SETTINGS.get(key, f"its params are {', '.join(sorted(declared))}")
        problems.append(f"{key!r} is not a param of this DAG ({why})")
    params = context["params"]
    # Also a scheduled run's window must fit: a setting that refuses every run is a mistake.
    limit = max_window()

    since, until = params.get("since"), params.get("until")
    has_interval = context.get("data_interval_start") is not None and context.get("data_interval_end") is not None
    if not has_interval and not (since and until):
        problems.append(
            "the run has no data interval (triggered without a logical date): give both since and until, "
            f"RFC 3339 times such as {RFC3339_EXAMPLE}"
        )
    if since and until:
        start, end = pendulum.parse(since), pendulum.parse(until)
        if start >= end:
            problems.append(f"since ({since}) must be before until ({until})")
        elif end - start > limit:
            problems.append(
                f"the window {since} to {until} is {hours(end - start)} long; at most {hours(limit)} "
                f"(the Airflow Variable {VAR_MAX_WINDOW_HOURS}, {DEFAULT_MAX_WINDOW_HOURS} unless set)"
            )
    elif since or until:
        # One bound from the param, the other from the data interval: a window nobody chose.
        problems.append(f"give both since and until, or neither (got since={since!r}, until={until!r})")
    return problems


def refuse(problems: list[str]) -> None:
    """Fail the task (no retry) listing the problems, or return when there are none."""
    if problems:
        raise AirflowFailException("this run was refused before it started:\n" + "\n".join(f"- {p}" for p in problems))


@task(task_id="check_params", retries=0)
def check_params(**context) -> None:
    """The run's first task: refuse a run whose params cannot work before the sensor waits
    or a container starts (see params_problems)."""
    refuse(params_problems(context))


def run_night(context) -> datetime.date:
    """The night (its Asia/Tokyo date) whose batch a run waits for: the day of its window's
    end, the data interval end of a scheduled or backfilled run (10:00 that day), else the
    until param of a run without a data interval."""
    until = context["params"].get("until")
    end = pendulum.parse(until) if until else context.get("data_interval_end")
    if end is None:
        raise AirflowFailException("the run has neither a data interval nor an until param (see check_params)")
    return pendulum.instance(end).in_timezone(TIMEZONE).date()


class NightlyBatchSensor(BaseSensorOperator):
    """Wait until this night's batch has published NIGHTLY_BATCH_DONE.

    The night is a date in Asia/Tokyo (see run_night); it begins at 00:00 that day. An
    event is this night's when the batch run that published it was due (its run_after)
    that day, from 00:00 to 24:00: then the batch refreshed this night's warehouse, also
    when it finished after 10:00 (late, but fresh: go ahead) or was backfilled days
    later. A re-run of the previous night's batch (cleared and run again after midnight)
    keeps its run, due the day before, and does not count; nor does a later night's, for
    a backfill. An event posted from outside Airflow (no source run) is judged by its own
    timestamp instead. The event's timestamp becomes the task's XCom.

    A backfill of a day whose batch never ran waits BATCH_WAIT_TIMEOUT, in case the batch
    is being backfilled too, then fails naming the night.

    (A BaseSensorOperator subclass rather than ``@task.sensor``: in Airflow 3.3 with
    apache-airflow-providers-standard 1.21 the decorator's PythonSensor import raises an
    Airflow deprecation warning at parse time.)
    """

    def __init__(self, *, asset=NIGHTLY_BATCH_DONE, **kwargs):
        kwargs.setdefault("inlets", [asset])
        super().__init__(**kwargs)
        self.asset = asset

    def poke(self, context) -> PokeReturnValue:
        night = run_night(context)
        start = pendulum.datetime(night.year, night.month, night.day, tz=TIMEZONE)
        end = start.add(days=1)

        def in_night(t) -> bool:
            return t is not None and start <= pendulum.instance(t) < end

        # The execution API's "after" is inclusive (timestamp >= after). A batch due this
        # night finishes after its start, so earlier events are never this night's.
        for event in context["inlet_events"][self.asset].after(rfc3339_utc(start)).ascending(True):
            source = event.source_dag_run if event.source_run_id else None
            due = source.run_after if source is not None else event.timestamp
            if in_night(due):
                self.log.info("%s published at %s for the night of %s", self.asset.name, event.timestamp, night)
                return PokeReturnValue(is_done=True, xcom_value=event.timestamp.isoformat())
            self.log.info(
                "%s event at %s is not the night of %s's (%s due %s)",
                self.asset.name, event.timestamp, night, event.source_run_id or "posted", due,
            )  # fmt: skip
        self.log.info("No %s event for the night of %s yet", self.asset.name, night)
        return PokeReturnValue(is_done=False)


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


# A long list in a failure message (and the alert made from it) shows this many entries,
# then how many more: the whole list is in the summary, the XCom.
LIST_CAP = 10
IDS_CAP = 12


def capped(lines: list[str], what: str) -> list[str]:
    """The first LIST_CAP lines, then one saying how many more ``what`` there are."""
    if len(lines) <= LIST_CAP:
        return lines
    return lines[:LIST_CAP] + [f"… and {len(lines) - LIST_CAP:,} more {what}"]


def plan_ids(ids: list, what: str) -> str:
    """'2,052 plans not attempted: 3001, 3002, … and 2,040 more': a count, then the first IDS_CAP ids."""
    shown = ", ".join(map(str, ids[:IDS_CAP]))
    more = f", … and {len(ids) - IDS_CAP:,} more" if len(ids) > IDS_CAP else ""
    return f"{len(ids):,} plan{'s' if len(ids) != 1 else ''} {what}: {shown}{more}"


def summary_problems(summary: dict) -> list[str]:
    """One line per plan in the summary that needs a person, saying which and why, grouped
    by kind; a kind with more than LIST_CAP plans ends in a line saying how many more.

    The plans come from summary_troubles (with the alerts, below), the one reader of the
    summary's lists."""
    troubles = summary_troubles(summary)

    def lines(kind):
        return [t.line for t in troubles if t.kind == kind]

    problems = [
        *capped(lines("needs_person"), "plans that need a person"),
        *capped(lines("failed"), "failed re-runs"),
        *capped(lines("rerun"), "undelivered re-runs"),
        # An earlier run's copy, waited for as this run's own.
        *capped(lines("skipped"), "undelivered earlier re-runs"),
        *capped(lines("in_progress"), "deliveries in progress"),
    ]
    stopped = [t.plan_id for t in troubles if t.kind == "not_attempted"]
    if stopped:
        problems.append(plan_ids(stopped, "not attempted (the run was stopped)"))
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
    parsed = parse_summary(summary)
    if parsed is None:
        raise AirflowFailException(f"{where}the re-run task left no summary in its XCom (got {summary!r})")
    summary = parsed
    problems = summary_problems(summary)
    code = summary.get("exit_code")
    if code == 0 or (code is None and not problems):
        return summary
    if not problems:
        problems = ["the summary names no plan; see the re-run task's log"]
    raise AirflowFailException(
        f"{where}looker-rerun needs a person (exit_code {code}):\n" + "\n".join(f"- {p}" for p in problems)
    )


RERUN_TASK_ID = "rerun_failed_deliveries"


def rerun_states(ti) -> dict[str, str | None]:
    """This run's states of the re-run task: {"rerun_failed_deliveries": state} unmapped,
    {"rerun_failed_deliveries_0": state, ...} mapped (as the execution API names them)."""
    return ti.get_task_states(dag_id=ti.dag_id, task_ids=[RERUN_TASK_ID], run_ids=[ti.run_id]).get(ti.run_id, {})


def check_instances(ti, names: list[str | None]) -> None:
    """Check the summary of each re-run task instance (map index i for names[i]; a single
    None name: the unmapped task) and fail naming every one that needs a person or left
    no summary, with its task state (failed, upstream_failed, ...)."""
    states = rerun_states(ti)
    problems = []
    for index, name in enumerate(names):
        map_index = -1 if name is None else index
        summary = ti.xcom_pull(task_ids=RERUN_TASK_ID, map_indexes=map_index)
        if summary is None:
            # An instance that never ran because the task was never expanded (its upstream
            # failed first) has no state of its own: the unexpanded task's is its.
            state = states.get(f"{RERUN_TASK_ID}_{index}", states.get(RERUN_TASK_ID)) if name else states.get(RERUN_TASK_ID)
            task = RERUN_TASK_ID + (f" [{name}]" if name else "")
            where = f"{name}: " if name else ""
            problems.append(f"{where}the re-run left no summary: {task} ended {state or 'without a state'}")
            continue
        try:
            check(summary, label=name or "")
        except AirflowFailException as err:
            problems.append(str(err))
    if problems:
        raise AirflowFailException("\n".join(problems))


# The checks run whatever became of the re-run task (trigger_rule all_done): a re-run that
# exits 3 or 4 (could not list the failures; stopped at RERUN_DEADLINE) fails its task but
# still leaves its summary as the XCom, and the check names what it says; a re-run that
# left none is named with its task state. Set them downstream of the re-run task.


@task(task_id="check_summary", retries=0, trigger_rule="all_done")
def check_summary(**context) -> None:
    """Fail the run, naming the plans and why, when the re-run needs a person or left no
    summary. Inside the DAG: ``rerun >> check_summary()``."""
    check_instances(context["ti"], [None])


@task(task_id="check_summaries", retries=0, trigger_rule="all_done")
def check_summaries(names: list[str], **context) -> None:
    """check_summary for a mapped re-run task, one instance per name in map order: one
    instance failing never hides another that needs a person.
    Inside the DAG: ``rerun_each >> check_summaries(names=[...])``."""
    check_instances(context["ti"], names)


# --- Alerts ---------------------------------------------------------------------------
#
# Every task of the re-run DAGs has ``AlertOnFailure`` as its on_failure_callback (the
# DAGs set it in default_args). When a run fails (check_summary finds a report that needs
# a person, the re-run task could not run, the batch sensor times out) it builds ONE
# message from the summaries, ``alert_message``, and hands it to the providers' own
# notifiers, each switched on when the task fails:
#
# * email, SmtpNotifier (apache-airflow-providers-smtp): on when the Variable
#   ``looker_rerun_alert_email`` holds recipients (comma-separated), sent through the
#   connection ``smtp_default`` (its extra ``from_email`` is the sender). The Variable
#   ``looker_rerun_alert_cc_owners`` = ``true`` copies the reports' owners (cc).
# * Slack, SlackWebhookNotifier (apache-airflow-providers-slack): on when the connection
#   ``looker_rerun_slack`` (type slackwebhook, password = the webhook token) exists.
#
# Neither provider is imported until a message is to be sent through it, so a deployment
# without them loads the DAGs as before. A notifier that cannot send logs an error; the
# task's own failure stays what it was. The message is built from the summaries alone
# (and the instance names), never from an exception's text, and the notifiers' notify()
# is called directly, not their __call__: that would render the message as a Jinja
# template, and plan names are user text.

ALERT_EMAIL_VARIABLE = "looker_rerun_alert_email"
ALERT_CC_OWNERS_VARIABLE = "looker_rerun_alert_cc_owners"
ALERT_SMTP_CONN_ID = "smtp_default"
ALERT_SLACK_CONN_ID = "looker_rerun_slack"

# Slack refuses a message text over 40,000 characters; an email body stays under this.
SLACK_TEXT_LIMIT = 40_000
EMAIL_TEXT_LIMIT = 100_000
# One field of one report (a plan name, Looker's status detail) is cut at this length.
FIELD_LIMIT = 300

# The summary's exit_code, or the container's, as a person reads it.
EXIT_CODE_MEANINGS = {
    1: "a person is needed",
    2: "bad settings: nothing was sent",
    3: "could not log in to Looker or list the failed deliveries: nothing was re-run",
    4: "stopped before the end",
}
# What to do about a run that did not finish, by exit code.
STOP_ACTIONS = {
    2: "fix the settings the re-run task's log names, then clear the task",
    3: "check Looker's URL, the API credentials and their permissions (the re-run task's log says which), "
    "then clear the task",
    4: "clear the re-run task: the next try finishes the job and sends nothing twice",
}
STOP_ACTION = "see the re-run task's log, then clear the task"


@dataclasses.dataclass(frozen=True)
class Trouble:
    """One report (scheduled plan) in a summary that did not (yet) arrive, and why.

    ``summary_troubles`` is the one reader of the summary's lists: check_summary's lines
    (``line``) and the alerts (``why``, ``action``) come from the same entries.
    """

    kind: str  # the summary list it came from: needs_person, failed, rerun, skipped, in_progress, not_attempted
    plan_id: str
    name: str
    owner: str
    content: str  # System Activity's content_type_id: look::3, dashboard::9, dashboard::model::name
    why: str
    action: str
    line: str


# What a person does about a report that needs them, by needs_person reason.
NEEDS_PERSON = {
    "permanent": ("permanent failure", "fix what the failure names with the owner, then re-send it from Looker"),
    "attempts_exhausted": (
        "re-runs exhausted",
        "check the destination with the owner, then re-send it from Looker",
    ),
    "unsure_copy": (
        "a one-off copy of it cannot be told from a re-run",
        "check in Looker whether it was re-sent; re-send it if not",
    ),
    "ambiguous_time": (
        "its times fall in the hour repeated when daylight saving ends",
        "check in Looker whether it was delivered; re-send it if not",
    ),
}
RESEND = "check the destination, then re-send it from Looker (no later run retries it)"
STILL_RUNNING = "still running when the run stopped waiting"
CHECK_LATER = "check in Looker later that it arrived; re-send it if it failed"
UNCONFIRMED_ACTION = "check in Looker whether it arrived before re-sending it (it may have been delivered)"


def summary_troubles(summary: dict) -> list[Trouble]:
    """The reports in a summary that need a person, in the order check_summary lists them."""

    def plan(e):
        name = e.get("name")
        return f"plan {e.get('plan_id')}" + (f" ({name})" if name else "")

    def trouble(kind, e, why, action, line):
        return Trouble(
            kind=kind,
            plan_id=str(e.get("plan_id", "")),
            name=e.get("name") or "",
            owner=e.get("owner") or "",
            content=e.get("content") or "",
            why=why,
            action=action,
            line=line,
        )

    def detail(value):
        return f": {value}" if value else ""

    def outcome(e, earlier):
        who = "an earlier run's re-run" if earlier else "the re-run"
        copy = e.get("new_plan_id")
        if e["outcome"] == "failed_again":
            return f"{who} failed again{detail(e.get('outcome_detail'))}", RESEND
        if e["outcome"] == "running":
            return f"{who} was {STILL_RUNNING}", CHECK_LATER
        return f"{who}'s copy (plan {copy}) never showed in System Activity", UNCONFIRMED_ACTION

    troubles = []
    for e in summary.get("needs_person") or []:
        reason = e.get("reason")
        why, action = NEEDS_PERSON.get(reason, (reason, "check its schedule in Looker"))
        owner = f", owner {e['owner']}" if e.get("owner") else ""
        line = f"needs a person: {plan(e)}{owner}: {reason}{detail(e.get('detail'))}"
        troubles.append(trouble("needs_person", e, why + detail(e.get("detail")), action, line))
    for e in summary.get("failed") or []:
        status = f" (HTTP {e['status']})" if e.get("status") else ""
        answer = f"Looker answered HTTP {e['status']}" if e.get("status") else "Looker did not answer"
        why = f"the re-run failed: {answer}{detail(e.get('error'))}"
        troubles.append(trouble("failed", e, why, RESEND, f"re-run failed: {plan(e)}{status}: {e.get('error')}"))
    for e in summary.get("rerun") or []:
        if e.get("outcome") in UNDELIVERED_OUTCOMES:
            why, action = outcome(e, earlier=False)
            line = f"re-run {e['outcome']}: {plan(e)}, copy {e.get('new_plan_id')}{detail(e.get('outcome_detail'))}"
            troubles.append(trouble("rerun", e, why, action, line))
    for e in summary.get("skipped") or []:
        # An earlier run's copy, waited for as this run's own.
        if e.get("outcome") in UNDELIVERED_OUTCOMES:
            why, action = outcome(e, earlier=True)
            line = (
                f"earlier re-run {e['outcome']}: {plan(e)}, copy {e.get('new_plan_id')}"
                f"{detail(e.get('outcome_detail'))}"
            )
            troubles.append(trouble("skipped", e, why, action, line))
    for e in summary.get("in_progress") or []:
        line = f"in progress: {plan(e)}: {e.get('outcome')}{detail(e.get('detail'))}"
        waited = e.get("outcome") == "running"
        why = f"a delivery of it was {STILL_RUNNING}" if waited else "a delivery of it was still running"
        troubles.append(trouble("in_progress", e, why + detail(e.get("detail")), CHECK_LATER, line))
    for plan_id in summary.get("not_attempted") or []:
        troubles.append(
            trouble(
                "not_attempted",
                {"plan_id": plan_id},
                "run stopped before re-running it",
                "clear the re-run task: the next try finishes the job and sends nothing twice",
                f"not attempted: plan {plan_id}",
            )
        )
    return troubles


def parse_summary(value) -> dict | None:
    """The re-run task's XCom as a summary dict: the dict itself or its JSON text; else None."""
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def content_url(looker_url: str, content: str) -> str:
    """The Looker page of a report: its dashboard or Look, from System Activity's content_type_id.

    ``look::3`` -> /looks/3, ``dashboard::9`` -> /dashboards/9, ``dashboard::model::name``
    (a LookML dashboard) -> /dashboards/model::name. Empty when either is unknown.
    """
    kind, _, ref = (content or "").partition("::")
    base = (looker_url or "").rstrip("/")
    parsed = urllib.parse.urlsplit(base)
    if not ref or kind not in ("look", "dashboard") or parsed.scheme not in ("http", "https") or not parsed.netloc:
        return ""
    # Only the scheme and host of looker_url: a path or query there is not Looker's page.
    return f"{parsed.scheme}://{parsed.netloc}/{kind}s/{urllib.parse.quote(ref, safe=':')}"


def instance_label(name: str, summary: dict | None) -> str:
    """The name an instance goes by in an alert: the given name, else its Looker host."""
    if name:
        return name
    host = urllib.parse.urlsplit((summary or {}).get("looker_url") or "").hostname
    return host or "looker"


@dataclasses.dataclass(frozen=True)
class AlertMessage:
    """One alert in each form the notifiers send: email subject, plain text, HTML, Slack mrkdwn.

    ``owners`` are the owners' emails of the reports listed, for the cc setting.
    """

    subject: str
    text: str
    html: str
    slack: str
    owners: tuple[str, ...]


def _cut(value, limit: int = FIELD_LIMIT) -> str:
    value = str(value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _slack_escape(value: str) -> str:
    # Slack's mrkdwn: only these three are control characters.
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fit(head: list[str], lines: list[str], tail: list[str], limit: int, more) -> list[str]:
    """head + as many of lines as fit in limit characters (joined by newlines) + "and N more" + tail."""
    budget = limit - sum(len(s) + 1 for s in head + tail) - len(more(len(lines))) - 1
    kept = []
    for line in lines:
        if budget - (len(line) + 1) < 0:
            break
        budget -= len(line) + 1
        kept.append(line)
    if len(kept) < len(lines):
        kept.append(more(len(lines) - len(kept)))
    return head + kept + tail


def alert_message(summaries) -> AlertMessage:
    """The alert for a failed run, from its summaries.

    ``summaries`` lists ``(instance name, summary)``, or ``(instance name, summary, why,
    action)`` when its task failed: the summary dict (or None when the instance left none;
    ``why``, when known, says why; ``action`` what to do, else the exit code's), in the
    order to report them. One line per report that needs a person: name, plan id,
    owner, why and what to do, linked to its dashboard or Look when the summary has
    ``looker_url`` and the entry ``content``. Instances with a clean summary are left out.
    """
    reports = []  # (instance, Trouble, url)
    stops = []  # (instance, why the run did not finish, what to do)
    instances = []
    for entry in summaries:
        name, summary = entry[0], parse_summary(entry[1])
        why = entry[2] if len(entry) > 2 else ""
        action = entry[3] if len(entry) > 3 else ""
        label = instance_label(name, summary)
        before = len(reports) + len(stops)
        if summary is None:
            stops.append((label, "left no summary" + (f": {why}" if why else ""), action or STOP_ACTION))
        else:
            for t in summary_troubles(summary):
                reports.append((label, t, content_url(summary.get("looker_url"), t.content)))
            code = summary.get("exit_code")
            if summary.get("error") or code in (2, 3, 4):
                meaning = EXIT_CODE_MEANINGS.get(code, "")
                parts = [p for p in (f"exit {code}" if code else "", meaning, summary.get("error"), why) if p]
                stops.append((label, ": ".join(parts), action or STOP_ACTIONS.get(code, STOP_ACTION)))
            elif why and len(reports) + len(stops) == before:
                stops.append((label, why, action or STOP_ACTION))
        if len(reports) + len(stops) > before and label not in instances:
            instances.append(label)

    count = len(reports)
    names = ", ".join(instances[:2]) + (", …" if len(instances) > 2 else "")
    if count:
        what = f"{count} report{'s' if count != 1 else ''} need{'s' if count == 1 else ''} a person"
        if stops:
            what += "; the run did not finish"
    else:
        what = "the run did not finish" if stops else "the run failed"
    subject = f"looker-rerun: {what} ({names or 'no instance named'})"

    def tag(label):
        # Which instance, when the alert covers more than one.
        return f"[{label}] " if len(instances) > 1 else ""

    def parts(t):
        """The report's name and what follows it in brackets: plan id (when it has a name), owner."""
        if not t.name:
            return f"plan {t.plan_id}", f"owner {t.owner}" if t.owner else ""
        return _cut(t.name), f"plan {t.plan_id}" + (f", owner {t.owner}" if t.owner else "")

    def report_text(label, t, url):
        name, about = parts(t)
        about = f" ({about})" if about else ""
        link = f" {url}" if url else ""
        return f"- {tag(label)}{name}{about}: {_cut(t.why)}. To do: {t.action}.{link}"

    def report_html(label, t, url):
        name, about = map(html.escape, parts(t))
        if url:
            name = f'<a href="{html.escape(url)}">{name}</a>'
        about = f" ({about})" if about else ""
        return (
            f"<li>{html.escape(tag(label))}<b>{name}</b>{about}: "
            f"{html.escape(_cut(t.why))}. To do: {html.escape(t.action)}.</li>"
        )

    def report_slack(label, t, url):
        name, about = map(_slack_escape, parts(t))
        name = f"<{_slack_escape(url)}|{name}>" if url else name
        about = f" ({about})" if about else ""
        return f"• {_slack_escape(tag(label))}*{name}*{about}: {_slack_escape(_cut(t.why))}. To do: {t.action}."

    stop_text = [
        f"- {tag(label)}the run did not finish: {_cut(why, 2 * FIELD_LIMIT)}. To do: {action}."
        for label, why, action in stops
    ]

    def more(n):
        return f"… and {n} more (see the check_summary task's log)"

    text = "\n".join(
        _fit(
            [subject, ""] + stop_text,
            [report_text(*r) for r in reports],
            [],
            EMAIL_TEXT_LIMIT,
            more,
        )
    )
    html_lines = _fit(
        [f"<p>{html.escape(subject)}</p>"]
        + [f"<p>{html.escape(line)}</p>" for line in stop_text]
        + ["<ul>"],
        [report_html(*r) for r in reports],
        ["</ul>"],
        EMAIL_TEXT_LIMIT,
        lambda n: f"<li>{html.escape(more(n))}</li>",
    )
    slack = "\n".join(
        _fit(
            [f"*{_slack_escape(subject)}*"] + [_slack_escape(line) for line in stop_text],
            [report_slack(*r) for r in reports],
            [],
            SLACK_TEXT_LIMIT,
            more,
        )
    )
    owners = tuple(dict.fromkeys(t.owner for _, t, _ in reports if t.owner))
    return AlertMessage(subject=subject, text=text, html="\n".join(html_lines), slack=slack, owners=owners)


class AlertOnFailure:
    """on_failure_callback of every task of a re-run DAG: send the alert for the failed run.

    ``instances`` names the instances of a mapped re-run task, in map order (the multi
    DAG); the single-instance DAGs leave it empty and go by the summary's Looker host.
    ``output_summary`` picks the summary out of a failed container's output lines (the
    Docker DAG's ``summary_from_output``; a failed DockerOperator pushes no XCom, a
    failed KubernetesPodOperator pushes the summary it read).

    Which task failed says where the summaries are: the sensor (the batch never came:
    nothing ran), check_summary (the re-run task's XCom, every instance's), or the re-run
    task itself (its own XCom or output, else only its exit code).
    """

    def __init__(self, instances: list[str] | None = None, output_summary=None):
        self.instances = list(instances or [])
        self.output_summary = output_summary

    def __repr__(self) -> str:
        return f"AlertOnFailure(instances={self.instances!r})"

    def __call__(self, context) -> None:
        log = logging.getLogger(__name__)
        try:
            channels = alert_channels()
            if not channels:
                log.info(
                    "No alert sent: neither Variable %s nor connection %s is set",
                    ALERT_EMAIL_VARIABLE,
                    ALERT_SLACK_CONN_ID,
                )
                return
            summaries = self.summaries(context)
            if not summaries:
                log.info("No alert sent: every instance's failure was alerted by its own task")
                return
            message = alert_message(summaries)
        except Exception:
            log.exception("Could not build the looker-rerun alert")
            return
        log.warning("looker-rerun alert:\n%s", message.text)
        for channel in channels:
            try:
                channel(message, context)
            except Exception:
                # The error of a notifier names its connection, never its password.
                log.exception("Could not send the looker-rerun alert through %s", channel.__name__)

    def summaries(self, context) -> list[tuple]:
        task, ti, error = context["task"], context["ti"], context.get("exception")
        if isinstance(task, BaseSensorOperator):
            if isinstance(error, AirflowSensorTimeout):
                wait = go_duration(datetime.timedelta(seconds=task.timeout))
                why = f"the nightly batch did not publish {NIGHTLY_BATCH_DONE.name} within {wait}: nothing was re-run"
            else:
                why = f"waiting for the nightly batch failed ({type(error).__name__}): nothing was re-run"
            action = "find out why the nightly batch is late; once it has run, clear the sensor task"
            return [(name, None, why, action) for name in self.instances or [""]]
        if task.task_id == "check_params":
            why = "the run's params were refused (the check_params task's log says why): nothing was re-run"
            action = "trigger the run again with valid params (the message in the log shows what is valid)"
            return [(name, None, why, action) for name in self.instances or [""]]
        if task.task_id in ("check_summary", "check_summaries"):
            return self.checked_summaries(ti)
        # The re-run task itself failed, after its retries.
        index = getattr(ti, "map_index", -1)
        name = self.instances[index] if 0 <= index < len(self.instances) else ""
        summary = parse_summary(ti.xcom_pull(task_ids=task.task_id, map_indexes=index))
        if summary is None and self.output_summary and getattr(error, "logs", None):
            lines = [v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in error.logs]
            summary = self.output_summary(lines)
        why, code = failure_reason(error, summary)
        return [(name, summary, why, STOP_ACTIONS.get(code, ""))]


    def checked_summaries(self, ti) -> list[tuple]:
        """The summaries the check task failed on, less the instances alerted already: a
        re-run task that failed (exit 2, 3 or 4, or killed) alerted through its own
        callback, with its exit code; one that never ran (upstream_failed) was stopped by
        check_params or the sensor, whose failure alerted. One failure, one alert."""
        states = rerun_states(ti)
        out = []
        for index, name in enumerate(self.instances or [None]):
            if name is None:
                map_index, state = -1, states.get(RERUN_TASK_ID)
            else:
                map_index, state = index, states.get(f"{RERUN_TASK_ID}_{index}", states.get(RERUN_TASK_ID))
            if state in ("failed", "upstream_failed"):
                continue
            summary = parse_summary(ti.xcom_pull(task_ids=RERUN_TASK_ID, map_indexes=map_index))
            if summary is None:
                why = f"{RERUN_TASK_ID} ended {state or 'without a state'}"
                out.append((name or "", None, why, "read the re-run task's log, then clear it"))
            else:
                out.append((name or "", summary))
        return out


def failure_reason(error, summary: dict | None) -> tuple[str, int | None]:
    """Why the re-run task failed and its exit code, if known, from the exit code only: an
    exception's text (a pod dump, say) is never copied into an alert."""
    if isinstance(error, AirflowTaskTimeout):
        return f"the re-run task did not finish within {go_duration(EXECUTION_TIMEOUT)}", None
    if summary is not None and summary.get("exit_code"):
        return "", None  # the summary's exit_code and error say it
    # DockerOperator: "Docker container failed: {'StatusCode': 3, ...}"; KubernetesPodOperator's
    # message has the pod's state, with the exit code among much else.
    match = re.search(r"'StatusCode': (\d+)|'exit_code': (\d+)", str(error or ""))
    if match:
        code = int(match.group(1) or match.group(2))
        meaning = f": {EXIT_CODE_MEANINGS[code]}" if code in EXIT_CODE_MEANINGS else ""
        return f"the container exited {code}{meaning}", code
    return "the re-run task failed", None


def _variable(key: str) -> str:
    from airflow.sdk import Variable

    return (Variable.get(key, default=None) or "").strip()


def alert_channels() -> list:
    """The notifiers switched on now: email when its Variable lists recipients, Slack
    when its connection exists."""
    channels = []
    if _variable(ALERT_EMAIL_VARIABLE):
        channels.append(send_email)
    try:
        Connection.get(ALERT_SLACK_CONN_ID)
    except AirflowNotFoundException:
        pass
    else:
        channels.append(send_slack)
    return channels


def send_email(message: AlertMessage, context) -> None:
    """Send the alert with the SMTP provider's SmtpNotifier, through ALERT_SMTP_CONN_ID."""
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    to = [a.strip() for a in _variable(ALERT_EMAIL_VARIABLE).split(",") if a.strip()]
    cc = None
    if _variable(ALERT_CC_OWNERS_VARIABLE).lower() == "true":
        cc = [o for o in message.owners if o not in to] or None
    notifier = SmtpNotifier(
        to=to, cc=cc, subject=message.subject, html_content=message.html, smtp_conn_id=ALERT_SMTP_CONN_ID
    )
    notifier.notify(context)  # not notifier(context): that renders the message as a template


def send_slack(message: AlertMessage, context) -> None:
    """Send the alert with the Slack provider's SlackWebhookNotifier, through ALERT_SLACK_CONN_ID."""
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    notifier = SlackWebhookNotifier(
        slack_webhook_conn_id=ALERT_SLACK_CONN_ID, text=message.slack, unfurl_links=False, unfurl_media=False
    )
    notifier.notify(context)
