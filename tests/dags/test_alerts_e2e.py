"""End to end: a failed run of looker_rerun_docker alerts through the real notifiers.

Airflow 3.3 (`airflow dags test`, a temporary AIRFLOW_HOME) runs the Docker DAG against
the stand-in Looker, the image on `podman system service`, as test_e2e_docker.py does,
with plan 105's failure made permanent, so check_summary fails the run naming it.

1. No alert switched on: nothing is sent, and the run fails only by check_summary.
2. The Variable looker_rerun_alert_email (and looker_rerun_alert_cc_owners) with the
   connection smtp_default pointing at a real SMTP server in this test (aiosmtpd, with
   a login), and the connection looker_rerun_slack (slackwebhook) whose host is a local
   HTTP server standing in for Slack's webhook: one email (to the recipients, the owner
   in cc) and one Slack message, each naming the report, its owner, why and what to do,
   linked to its Look, and holding no secret (Looker's, SMTP's, the webhook token).

Needs what test_e2e_docker.py needs; DAG_E2E=0 skips it.
"""

from __future__ import annotations

import email
import email.policy
import http.server
import json
import shutil
import socket
import threading

import pendulum
import pytest

from conftest import CLIENT_ID, CLIENT_SECRET, DAGS, REPO, e2e
from e2e_airflow import make_airflow, podman_service
from test_e2e_docker import DAG_ID, PERMANENT_PATTERN

pytestmark = e2e

SMTP_USER = "alerts"
SMTP_PASSWORD = "smtp-password-never-shown"
SLACK_TOKEN = "T000/B000/webhook-token-never-shown"
RECIPIENTS = "ops@example.com, oncall@example.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_no_alert_error(output, diag):
    for error in ("Could not build the looker-rerun alert", "Could not send the looker-rerun alert"):
        assert error not in output, diag(output)


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on loopback that takes a login; yields the messages it got."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login.decode() == SMTP_USER and auth_data.password.decode() == SMTP_PASSWORD
        return AuthResult(success=ok)

    controller = Controller(
        Handler(), hostname="127.0.0.1", port=free_port(), authenticator=authenticator, auth_require_tls=False
    )
    controller.start()
    try:
        yield controller.port, received
    finally:
        controller.stop()


@pytest.fixture
def slack_server():
    """A local HTTP endpoint standing in for Slack's incoming webhook; yields (url, requests)."""
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append((self.path, json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


LOGICAL_DATE = pendulum.now("UTC").replace(microsecond=0)


@pytest.fixture
def airflow(tmp_path, lookertest, image):
    # This night's batch ran (see test_e2e_docker's fixture).
    return make_airflow(
        tmp_path,
        lookertest_url=lookertest["url"],
        image=image,
        batch_dates=[LOGICAL_DATE.subtract(minutes=5), LOGICAL_DATE],
    )


def test_failed_run_alerts_by_email_and_slack(podman, airflow, lookertest, smtp_server, slack_server, tmp_path):
    smtp_port, mails = smtp_server
    slack_url, posts = slack_server
    logical_date = LOGICAL_DATE
    failed_by_check = {
        "check_params": "success",
        "wait_for_nightly_batch": "success",
        "rerun_failed_deliveries": "success",
        "check_summary": "failed",
    }

    def diag(output):
        return f"\n--- airflow dags test\n{output}\n--- lookertest\n{lookertest['log'].read_text()}"

    with podman_service(
        podman, tmp_path, "permanent", container_env=[f"RERUN_PERMANENT_PATTERN={PERMANENT_PATTERN}"]
    ) as docker_host:
        # 1. Nothing switched on: no alert, and nothing fails but check_summary.
        output, result = airflow.dags_test(DAG_ID, logical_date, docker_host=docker_host)
        assert result["states"] == failed_by_check, diag(output)
        assert "No alert sent" in output, diag(output)
        assert_no_alert_error(output, diag)
        assert mails == [] and posts == []

        # 2. Email and Slack switched on; the same run again (plan 105 still needs a person).
        airflow("variables", "set", "looker_rerun_alert_email", RECIPIENTS)
        airflow("variables", "set", "looker_rerun_alert_cc_owners", "true")
        airflow(
            "connections", "add", "smtp_default", "--conn-type", "smtp", "--conn-host", "127.0.0.1",
            "--conn-port", str(smtp_port), "--conn-login", SMTP_USER, "--conn-password", SMTP_PASSWORD,
            "--conn-extra", json.dumps({"disable_ssl": True, "disable_tls": True, "from_email": "airflow@example.com"}),
        )  # fmt: skip
        airflow(
            "connections", "add", "looker_rerun_slack", "--conn-type", "slackwebhook",
            "--conn-host", slack_url, "--conn-password", SLACK_TOKEN,
        )  # fmt: skip
        output, result = airflow.dags_test(DAG_ID, logical_date, docker_host=docker_host)
    assert result["states"] == failed_by_check, diag(output)
    assert_no_alert_error(output, diag)

    report = [
        "Inventory",  # the report
        "plan 105",
        "analyst@example.com",  # its owner
        "permanent failure",  # why
        PERMANENT_PATTERN,  # Looker's detail
        "To do: fix what the failure names with the owner, then re-send it from Looker",
        # Its Look in Looker: the summary's looker_url and the entry's content, look::33.
        f"{lookertest['url']}/looks/33",
    ]
    secrets = [CLIENT_SECRET, SMTP_PASSWORD, SLACK_TOKEN, SLACK_TOKEN.rsplit("/", 1)[1]]
    subject = "looker-rerun: 1 report needs a person"

    assert len(mails) == 1, diag(output)
    envelope = mails[0]
    mail = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    body = mail.get_body(("html", "plain")).get_content()
    assert mail["Subject"].startswith(subject), mail["Subject"]
    assert sorted(envelope.rcpt_tos) == ["analyst@example.com", "oncall@example.com", "ops@example.com"]
    assert mail["Cc"] == "analyst@example.com", mail["Cc"]
    for part in report:
        assert part.replace('"', "&quot;") in body, body
    for secret in secrets:
        assert secret not in envelope.original_content.decode(errors="replace")

    assert len(posts) == 1, diag(output)
    path, payload = posts[0]
    assert path == "/" + SLACK_TOKEN  # the token is where the webhook's URL has it, and only there
    text = payload["text"]
    assert text.startswith(f"*{subject}"), text
    for part in report:
        assert part in text, text
    for secret in secrets:
        assert secret not in json.dumps(payload)
