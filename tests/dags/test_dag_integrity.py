"""The DAG folder parses cleanly: no import errors, no deprecation warnings, serializable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import DAGS, REPO

EXPECTED_DAGS = {"looker_rerun", "looker_rerun_multi", "looker_rerun_docker"}

# Parsed in a fresh interpreter: a module imported earlier in the pytest process (by
# another test, or by pytest's own plugins) would not warn again, hiding its warnings.
PARSE_SCRIPT = textwrap.dedent(
    """
    import json, logging, sys, warnings
    from pathlib import Path

    dags = Path(sys.argv[1])
    caught = []

    def record(message, category, filename, lineno, file=None, line=None):
        caught.append((category, filename, lineno, str(message)))

    # Airflow routes warnings into its logs (logging.captureWarnings), replacing
    # warnings.showwarning whenever it sets up logging; keep putting the recorder back.
    warnings.simplefilter("always")
    warnings.showwarning = record
    import airflow  # noqa: F401  (configures logging)
    warnings.simplefilter("always")
    warnings.showwarning = record
    from airflow.dag_processing.dagbag import BundleDagBag
    warnings.showwarning = record

    bag = BundleDagBag(dag_folder=dags, bundle_path=dags, bundle_name="dags-folder")
    from airflow.serialization.serialized_objects import DagSerialization

    serialized = {}
    for dag_id, dag in bag.dags.items():
        restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
        serialized[dag_id] = sorted(restored.task_ids)

    def category_names(cls):
        return [c.__module__ + "." + c.__qualname__ for c in cls.__mro__]

    print("PARSE-RESULT " + json.dumps({
        "dags": sorted(bag.dag_ids),
        "import_errors": bag.import_errors,
        "captured_warnings": {k: list(v) for k, v in bag.captured_warnings.items()},
        "warnings": [
            {"category": category_names(c), "file": f, "line": n, "message": m} for c, f, n, m in caught
        ],
        "serialized": serialized,
    }))
    """
)

DEPRECATION_CATEGORIES = (
    "builtins.DeprecationWarning",
    "builtins.PendingDeprecationWarning",
    "builtins.FutureWarning",
)


@pytest.fixture(scope="module")
def parsed():
    proc = subprocess.run(
        [sys.executable, "-c", PARSE_SCRIPT, str(DAGS)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    result = [line for line in lines if line.startswith("PARSE-RESULT ")]
    assert len(result) == 1, proc.stdout + proc.stderr
    other_output = "\n".join(line for line in lines if not line.startswith("PARSE-RESULT ")) + proc.stderr
    return json.loads(result[0].removeprefix("PARSE-RESULT ")), other_output


def test_dag_folder_parses_without_errors_or_deprecation_warnings(parsed):
    result, output = parsed

    assert result["import_errors"] == {}
    assert set(result["dags"]) == EXPECTED_DAGS

    # Warnings the importer caught while executing the DAG files (it re-emits them as
    # UserWarning, so their text carries the real category).
    for path, texts in result["captured_warnings"].items():
        assert not texts, f"warnings while parsing {path}: {texts}"

    deprecations = [
        w for w in result["warnings"] if any(c in DEPRECATION_CATEGORIES for c in w["category"])
    ]
    assert deprecations == [], json.dumps(deprecations, indent=2)
    # Anything that got past the recorder into Airflow's log (stdout) or stderr.
    assert "deprecat" not in output.lower(), output


def test_dags_round_trip_through_serialization(parsed):
    # The scheduler and the UI only ever see the serialized form.
    result, _ = parsed
    assert result["serialized"] == {
        "looker_rerun": ["check_summary", "rerun_failed_deliveries", "wait_for_nightly_batch"],
        "looker_rerun_docker": ["check_summary", "rerun_failed_deliveries", "wait_for_nightly_batch"],
        "looker_rerun_multi": ["check_summary", "rerun_failed_deliveries", "wait_for_nightly_batch"],
    }


def test_dag_level_settings(get_dag):
    for dag_id in EXPECTED_DAGS:
        dag = get_dag(dag_id)
        assert dag.catchup is False
        assert dag.max_active_runs == 1
        assert "looker" in dag.tags
        assert dag.doc_md
