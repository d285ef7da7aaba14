"""Alerts: the message a person acts on (alert_message), and the callback that sends it.

The notifiers themselves (SmtpNotifier, SlackWebhookNotifier) are exercised for real in
test_alerts_e2e.py; here the callback's channels are replaced where a test is about what
it sends, not how.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from conftest import DAGS

LOOKER = "https://looker.example.com"

# Every kind of report that needs a person, as the binary writes them (with the fields
# looker_url and content).
TROUBLED = {
    "window": {"since": "2026-11-27T00:58:00Z", "until": "2026-11-28T00:58:00Z"},
    "source": "system_activity",
    "dry_run": False,
    "looker_url": LOOKER,
    "rerun": [
        {"plan_id": "101", "name": "Daily revenue", "new_plan_id": "90002", "outcome": "delivered",
         "content": "dashboard::1"},
        {"plan_id": "105", "name": "Inventory", "new_plan_id": "90001", "outcome": "failed_again",
         "outcome_detail": "Webhook answered 502", "content": "look::3"},
        {"plan_id": "107", "name": "Signups", "new_plan_id": "90003", "outcome": "running",
         "content": "dashboard::9"},
        {"plan_id": "108", "name": "Funnel", "new_plan_id": "90004", "outcome": "unconfirmed",
         "content": "dashboard::thelook::funnel"},
    ],
    "skipped": [
        {"plan_id": "102", "name": "Orders", "reason": "later_success"},
        {"plan_id": "103", "name": "Board pack", "reason": "already_rerun", "new_plan_id": "9103",
         "outcome": "failed_again", "outcome_detail": "SMTP 451", "content": "dashboard::12"},
    ],
    "failed": [
        {"plan_id": "109", "name": "Churn", "status": 403, "error": "looker: run scheduled plan 109: forbidden",
         "content": "look::7"},
    ],
    "not_attempted": ["111"],
    "needs_person": [
        {"plan_id": "104", "name": "Stock", "owner": "ops@example.com", "reason": "attempts_exhausted",
         "detail": "3 re-runs of this failure failed", "content": "dashboard::4"},
        {"plan_id": "106", "name": "Margins", "owner": "analyst@example.com", "reason": "permanent",
         "detail": 'a re-run cannot fix "Invalid recipient"', "content": "look::6"},
    ],
    "in_progress": [
        {"plan_id": "110", "name": "Ops", "started": "2026-11-28T00:50:00Z", "outcome": "running",
         "detail": "started 00:50", "content": "dashboard::10"},
    ],
    "exit_code": 1,
}  # fmt: skip

CLEAN = {
    "window": TROUBLED["window"],
    "looker_url": "https://emea.looker.example.com",
    "rerun": [{"plan_id": "1", "name": "Fine", "new_plan_id": "2", "outcome": "delivered"}],
    "skipped": [],
    "failed": [],
    "not_attempted": [],
    "needs_person": [],
    "in_progress": [],
    "exit_code": 0,
}


def message(*entries):
    from looker_rerun_common import alert_message

    return alert_message(list(entries))


def lines_for(text, name):
    return [line for line in text.splitlines() if name in line]


def test_subject_names_the_count_and_the_instance():
    from looker_rerun_common import alert_message

    got = alert_message([("", TROUBLED)]).subject
    assert got == "looker-rerun: 9 reports need a person (looker.example.com)"
    one = {**CLEAN, "needs_person": TROUBLED["needs_person"][:1], "exit_code": 1}
    assert alert_message([("", one)]).subject == (
        "looker-rerun: 1 report needs a person (emea.looker.example.com)"
    )
    many = alert_message([("prod", one), ("emea", one), ("apac", one)]).subject
    assert many == "looker-rerun: 3 reports need a person (prod, emea, …)"


@pytest.mark.parametrize(
    ("name", "want"),
    [
        pytest.param("Stock", ["plan 104", "ops@example.com", "re-runs exhausted", "3 re-runs of this failure failed",
                               "check the destination with the owner", f"{LOOKER}/dashboards/4"], id="attempts_exhausted"),
        pytest.param("Margins", ["plan 106", "analyst@example.com", "permanent failure", "Invalid recipient",
                                 "fix what the failure names", f"{LOOKER}/looks/6"], id="permanent"),
        pytest.param("Churn", ["plan 109", "re-run failed: Looker answered HTTP 403", "forbidden",
                               "re-send it from Looker", f"{LOOKER}/looks/7"], id="failed with Looker's status"),
        pytest.param("Inventory", ["plan 105", "the re-run failed again: Webhook answered 502",
                                   "re-send it from Looker", f"{LOOKER}/looks/3"], id="failed_again"),
        pytest.param("Signups", ["plan 107", "still running", "check in Looker later",
                                 f"{LOOKER}/dashboards/9"], id="re-run still running"),
        pytest.param("Funnel", ["plan 108", "copy (plan 90004) never showed in System Activity",
                                "check in Looker whether it arrived before re-sending",
                                f"{LOOKER}/dashboards/thelook::funnel"], id="unconfirmed, LookML dashboard"),
        pytest.param("Board pack", ["plan 103", "an earlier run's re-run failed again: SMTP 451",
                                    f"{LOOKER}/dashboards/12"], id="earlier copy failed again"),
        pytest.param("Ops", ["plan 110", "a delivery of it was still running", "started 00:50",
                             f"{LOOKER}/dashboards/10"], id="in_progress running"),
        pytest.param("plan 111", ["run stopped before re-running it", "clear the re-run task"], id="not_attempted"),
    ],
)  # fmt: skip
def test_one_line_per_report_with_why_what_to_do_and_link(name, want):
    got = message(("", TROUBLED))
    for form in (got.text, got.slack):
        lines = lines_for(form, name)
        assert len(lines) == 1, form
        for part in want:
            assert part in lines[0], lines[0]
    html_lines = [line for line in got.html.splitlines() if name in line]
    assert len(html_lines) == 1, got.html
    link = next((p for p in want if p.startswith(LOOKER)), None)
    if link:
        assert f'<a href="{link}">' in html_lines[0], html_lines[0]
        assert f"<{link}|" in lines_for(got.slack, name)[0]


def test_delivered_and_skipped_reports_are_not_listed():
    got = message(("", TROUBLED))
    for name in ("Daily revenue", "Orders"):
        assert name not in got.text and name not in got.html and name not in got.slack


def test_the_summarys_error_says_why_the_run_did_not_finish():
    got = message(("", TROUBLED | {"error": "stopped by SIGTERM", "exit_code": 4}))
    assert "the run did not finish: exit 4: stopped before the end: stopped by SIGTERM" in got.text, got.text
    login = {**CLEAN, "rerun": [], "error": "looker: login: 401 Unauthorized", "exit_code": 3}
    got = message(("prod", login))
    assert got.subject == "looker-rerun: the run did not finish (prod)"
    assert "exit 3: could not log in to Looker or list the failed deliveries" in got.text
    assert "looker: login: 401 Unauthorized" in got.text


def test_an_instance_without_summary_says_so_and_why():
    got = message(("prod", None, "the container exited 2: bad settings: nothing was sent"), ("emea", CLEAN))
    assert got.subject == "looker-rerun: the run did not finish (prod)"
    assert "the run did not finish: left no summary: the container exited 2: bad settings" in got.text, got.text
    assert "emea" not in got.text  # its run was clean
    got = message(("", None))
    assert "left no summary. To do: see the re-run task's log, then clear the task." in got.text
    assert got.subject == "looker-rerun: the run did not finish (looker)"


def test_instances_are_named_on_each_line_when_there_are_several():
    bad = {**CLEAN, "needs_person": TROUBLED["needs_person"], "exit_code": 1}
    got = message(("prod", bad), ("emea", None, "the container exited 3"))
    assert "- [prod] Stock (plan 104" in got.text, got.text
    assert "- [emea] the run did not finish: left no summary: the container exited 3" in got.text
    assert message(("prod", bad)).text.count("[prod]") == 0


def test_no_link_without_looker_url_or_content():
    bare = {k: v for k, v in TROUBLED.items() if k != "looker_url"}
    got = message(("", bare))
    assert "http" not in got.text and "href" not in got.html, got.text
    no_content = {**TROUBLED, "needs_person": [{**TROUBLED["needs_person"][0], "content": ""}]}
    assert "/dashboards/4" not in message(("", no_content)).text
    # A content id of an unknown kind, or a looker_url that is not a web address: no link.
    odd = {**TROUBLED, "looker_url": "javascript:alert(1)"}
    assert "javascript" not in message(("", odd)).html


def test_names_are_escaped_and_never_templated():
    name = '<script>alert("x")</script> & {{ conn.smtp_default.password }} <!channel>'
    plan = {"plan_id": "7", "name": name, "owner": "a&b@example.com", "reason": "permanent",
            "detail": "<b>bold</b>", "content": "dashboard::<7>"}  # fmt: skip
    got = message(("<prod>", {**CLEAN, "needs_person": [plan], "exit_code": 1}))
    assert "<script>" not in got.html and "<b>bold" not in got.html, got.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; {{ conn.smtp_default.password }}" in got.html
    assert "owner a&amp;b@example.com" in got.html
    assert 'href="https://emea.looker.example.com/dashboards/%3C7%3E"' in got.html
    # Slack: &, < and > escaped, so <!channel> pings no one and the link is the only one.
    assert "<!channel>" not in got.slack and "&lt;!channel&gt;" in got.slack, got.slack
    assert "&lt;script&gt;" in got.slack and "&amp; {{" in got.slack
    assert got.slack.count("<https://") == 1
    # The text is plain: kept as written (no Jinja rendered it).
    assert name in got.text


def test_long_lists_are_cut_to_fit():
    from looker_rerun_common import EMAIL_TEXT_LIMIT, SLACK_TEXT_LIMIT

    plans = [
        {"plan_id": str(i), "name": f"Report {i} " + "x" * 400, "owner": f"o{i}@example.com", "reason": "permanent",
         "detail": "y" * 1000, "content": f"dashboard::{i}"}
        for i in range(2000)
    ]  # fmt: skip
    got = message(("", {**TROUBLED, "needs_person": plans}))
    assert got.subject.startswith("looker-rerun: 2007 reports need a person"), got.subject
    assert len(got.slack) <= SLACK_TEXT_LIMIT
    for form in (got.text, got.html):
        assert len(form) <= EMAIL_TEXT_LIMIT
    for form in (got.text, got.slack, got.html):
        shown = form.count("(plan ")
        assert 0 < shown < 2007
        assert f"… and {2007 - shown} more" in form, form[-300:]
    # Every field is cut, so one report cannot take the whole message.
    assert "y" * 300 not in got.text
    assert got.html.rstrip().endswith("</ul>")


def test_owners_for_cc():
    got = message(("", TROUBLED), ("emea", {**CLEAN, "needs_person": TROUBLED["needs_person"], "exit_code": 1}))
    assert got.owners == ("ops@example.com", "analyst@example.com")


def test_check_summary_reads_the_same_entries():
    """check_summary's lines and the alert come from one reader of the summary."""
    from looker_rerun_common import summary_problems, summary_troubles

    troubles = summary_troubles(TROUBLED)
    assert [t.plan_id for t in troubles] == ["104", "106", "109", "105", "107", "108", "103", "110", "111"]
    problems = summary_problems(TROUBLED)
    assert problems[-1] == "1 plan not attempted (the run was stopped): 111"
    assert problems[:-1] == [t.line for t in troubles[:-1]]


# --- the callback ---------------------------------------------------------------------


class FakeTI:
    dag_id, run_id = "dag", "run"

    def __init__(self, xcoms=None, map_index=-1, states=None):
        self.xcoms = xcoms or {}
        self.map_index = map_index
        self.states = states or {}
        self.pulls = []

    def get_task_states(self, dag_id, task_ids, run_ids):
        return {self.run_id: self.states}

    def xcom_pull(self, task_ids, map_indexes):
        self.pulls.append((task_ids, map_indexes))
        if isinstance(map_indexes, list):
            return [self.xcoms.get((task_ids, i)) for i in map_indexes]
        return self.xcoms.get((task_ids, map_indexes))


@pytest.fixture
def sent(monkeypatch, supervisor_comms):
    """The alert messages the callback sends, through a channel standing in for both."""
    import looker_rerun_common

    messages = []

    def channel(message, context):
        messages.append(message)

    monkeypatch.setattr(looker_rerun_common, "alert_channels", lambda: [channel])
    return messages


def test_check_summary_failing_sends_the_summarys_reports(get_dag, sent):
    dag = get_dag("looker_rerun_docker")
    task = dag.get_task("check_summary")
    ti = FakeTI({("rerun_failed_deliveries", -1): TROUBLED}, states={"rerun_failed_deliveries": "success"})
    task.on_failure_callback[0]({"task": task, "ti": ti, "exception": None})
    assert ti.pulls == [("rerun_failed_deliveries", -1)]
    (got,) = sent
    assert got.subject.startswith("looker-rerun: 9 reports need a person"), got.subject


def test_multi_dag_sends_every_instances_reports_in_one_message(get_dag, sent):
    dag = get_dag("looker_rerun_multi")
    task = dag.get_task("check_summaries")
    bad = {**CLEAN, "needs_person": TROUBLED["needs_person"], "exit_code": 1}
    ti = FakeTI(
        {("rerun_failed_deliveries", 0): CLEAN, ("rerun_failed_deliveries", 1): bad},
        states={"rerun_failed_deliveries_0": "success", "rerun_failed_deliveries_1": "success"},
    )
    task.on_failure_callback[0]({"task": task, "ti": ti, "exception": None})
    (got,) = sent
    assert got.subject == "looker-rerun: 2 reports need a person (emea)", got.subject


@pytest.mark.parametrize(
    ("states", "want"),
    [
        pytest.param(
            {"rerun_failed_deliveries_0": "failed", "rerun_failed_deliveries_1": "success"},
            ["Stock (plan 104"],
            id="an instance that failed alerted by itself; the other's reports still sent",
        ),
        pytest.param(
            {"rerun_failed_deliveries_0": "failed", "rerun_failed_deliveries_1": "failed"},
            None,
            id="every instance alerted by itself: no second alert",
        ),
        pytest.param(
            {"rerun_failed_deliveries": "upstream_failed"},
            None,
            id="the sensor or check_params failed and alerted: no second alert",
        ),
        pytest.param(
            {"rerun_failed_deliveries_0": "success", "rerun_failed_deliveries_1": "success"},
            ["Stock (plan 104", "[prod]", "left no summary: rerun_failed_deliveries ended success"],
            id="an instance that left no summary for no alerted reason: named",
        ),
    ],
)
def test_multi_dag_alerts_each_failure_once(get_dag, sent, states, want):
    dag = get_dag("looker_rerun_multi")
    task = dag.get_task("check_summaries")
    bad = {**CLEAN, "needs_person": TROUBLED["needs_person"], "exit_code": 1}
    # Instance 0 (prod) left no summary; instance 1 (emea) needs a person.
    ti = FakeTI({("rerun_failed_deliveries", 1): bad}, states=states)
    task.on_failure_callback[0]({"task": task, "ti": ti, "exception": None})
    if want is None:
        assert sent == []
        return
    (got,) = sent
    for part in want:
        assert part in got.text, got.text
    if "[prod]" not in want:
        assert "prod" not in got.text, got.text


@pytest.mark.parametrize(
    ("dag_id", "exception", "xcom", "want"),
    [
        pytest.param(
            "looker_rerun_docker",
            "Docker container failed: {'StatusCode': 3, 'Error': None}",
            None,
            "exit 3: could not log in to Looker or list the failed deliveries: nothing was re-run: looker: login: 401",
            id="docker exit 3, summary in the output",
        ),
        pytest.param(
            "looker_rerun_docker",
            "Docker container failed: {'StatusCode': 2, 'Error': None}",
            None,
            "left no summary: the container exited 2: bad settings: nothing was sent",
            id="docker exit 2, no summary",
        ),
        pytest.param(
            "looker_rerun",
            "Pod looker-rerun-x returned a failure.\nremote_pod: {'env': [{'name': 'TOKEN', 'value': 'hunter2'}], "
            "'exit_code': 3, 'StatusCode': 3}",
            {**CLEAN, "rerun": [], "error": "looker: login: 401", "exit_code": 3},
            "exit 3: could not log in to Looker or list the failed deliveries: nothing was re-run: looker: login: 401",
            id="pod exit 3, summary in the XCom",
        ),
    ],
)
def test_rerun_task_failing_says_why(get_dag, sent, dag_id, exception, xcom, want):
    from airflow.providers.docker.exceptions import DockerContainerFailedException

    from looker_rerun_common import STOP_ACTIONS

    task = get_dag(dag_id).get_task("rerun_failed_deliveries")
    logs = []
    if "StatusCode': 3" in exception:
        summary = {**CLEAN, "rerun": [], "error": "looker: login: 401", "exit_code": 3}
        logs = [b'{"level":"error","message":"login failed"}', json.dumps(summary).encode()]
    error = DockerContainerFailedException(exception, logs=logs)
    ti = FakeTI({("rerun_failed_deliveries", -1): xcom})
    task.on_failure_callback[0]({"task": task, "ti": ti, "exception": error})
    (got,) = sent
    assert want in got.text, got.text
    assert "To do: " + STOP_ACTIONS[int(exception.split("'StatusCode': ")[1][0])] in got.text, got.text
    assert "hunter2" not in got.text + got.html + got.slack
    assert "remote_pod" not in got.text


def test_sensor_timeout_says_nothing_was_rerun(get_dag, sent):
    from airflow.sdk.exceptions import AirflowSensorTimeout

    task = get_dag("looker_rerun").get_task("wait_for_nightly_batch")
    task.on_failure_callback[0]({"task": task, "ti": FakeTI(), "exception": AirflowSensorTimeout("timed out")})
    (got,) = sent
    assert "the nightly batch did not publish nightly_batch_warehouse within 6h" in got.text, got.text
    assert "nothing was re-run. To do: find out why the nightly batch is late" in got.text


def test_every_task_alerts(get_dag):
    from looker_rerun_common import AlertOnFailure

    for dag_id in ("looker_rerun", "looker_rerun_multi", "looker_rerun_docker"):
        for task in get_dag(dag_id).tasks:
            assert [type(c) for c in task.on_failure_callback] == [AlertOnFailure], (dag_id, task.task_id)


SLACK_CONN = json.dumps({"conn_type": "slackwebhook", "password": "T0/B0/x"})


@pytest.mark.parametrize(
    ("env", "want"),
    [
        pytest.param({}, [], id="nothing set: off"),
        pytest.param({"AIRFLOW_VAR_LOOKER_RERUN_ALERT_EMAIL": "  "}, [], id="empty recipients: off"),
        pytest.param({"AIRFLOW_VAR_LOOKER_RERUN_ALERT_EMAIL": "ops@example.com"}, ["send_email"], id="email"),
        pytest.param({"AIRFLOW_CONN_LOOKER_RERUN_SLACK": SLACK_CONN}, ["send_slack"],
                     id="slack"),
        pytest.param(
            {"AIRFLOW_VAR_LOOKER_RERUN_ALERT_EMAIL": "ops@example.com",
             "AIRFLOW_CONN_LOOKER_RERUN_SLACK": SLACK_CONN},
            ["send_email", "send_slack"],
            id="both",
        ),
    ],
)  # fmt: skip
def test_channels_are_switched_on_by_variable_and_connection(monkeypatch, supervisor_comms, env, want):
    from looker_rerun_common import alert_channels

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert [c.__name__ for c in alert_channels()] == want


# A deployment without the SMTP and Slack providers: importing them fails.
WITHOUT_NOTIFIERS = textwrap.dedent(
    """
    import importlib.metadata, json, logging, sys
    import importlib_metadata

    HIDDEN = {"apache-airflow-providers-slack", "apache-airflow-providers-smtp", "slack-sdk"}

    class NoNotifiers:
        def find_spec(self, name, path=None, target=None):
            if name.startswith(("airflow.providers.slack", "airflow.providers.smtp", "slack_sdk")):
                raise ModuleNotFoundError(f"No module named {name!r} (not installed)", name=name)
            return None

    sys.meta_path.insert(0, NoNotifiers())

    def without_notifiers(distributions):
        def filtered(**kwargs):
            for dist in distributions(**kwargs):
                if (dist.metadata["Name"] or "").lower().replace("_", "-") not in HIDDEN:
                    yield dist
        return filtered

    importlib.metadata.distributions = without_notifiers(importlib.metadata.distributions)
    importlib_metadata.distributions = without_notifiers(importlib_metadata.distributions)
    dags = sys.argv[1]
    sys.path.append(dags)

    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=dags, bundle_path=dags, bundle_name="dags-folder")

    import looker_rerun_common as common

    errors = []
    logging.getLogger("looker_rerun_common").addHandler(
        type("H", (logging.Handler,), {"emit": lambda self, r: errors.append(r.getMessage())})()
    )
    common.alert_channels = lambda: [common.send_email, common.send_slack]
    task = bag.dags["looker_rerun_docker"].get_task("check_summary")

    class TI:
        map_index = -1
        dag_id, run_id = "dag", "run"
        def get_task_states(self, dag_id, task_ids, run_ids):
            return {"run": {"rerun_failed_deliveries": "success"}}
        def xcom_pull(self, task_ids, map_indexes):
            return {"needs_person": [{"plan_id": "1", "reason": "permanent"}], "exit_code": 1}

    task.on_failure_callback[0]({"task": task, "ti": TI(), "exception": None})
    print("RESULT " + json.dumps({"dags": sorted(bag.dag_ids), "import_errors": bag.import_errors, "log": errors}))
    """
)


def test_dags_load_and_fail_quietly_without_the_notifier_providers():
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_NOTIFIERS, str(DAGS)], capture_output=True, text=True, timeout=300
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and len(lines) == 1, proc.stdout + proc.stderr
    result = json.loads(lines[0].removeprefix("RESULT "))
    assert result["import_errors"] == {}
    assert result["dags"] == ["looker_rerun", "looker_rerun_docker", "looker_rerun_multi"]
    # Switched on but not installed: each channel says it could not send; the callback returns.
    assert [m for m in result["log"] if m.startswith("Could not send")] == [
        "Could not send the looker-rerun alert through send_email",
        "Could not send the looker-rerun alert through send_slack",
    ], result["log"]
