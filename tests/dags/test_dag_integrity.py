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
    import json, sys, warnings
    from pathlib import Path

    dags = Path(sys.argv[1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from airflow.dag_processing.dagbag import BundleDagBag

        bag = BundleDagBag(dag_folder=dags, bundle_path=dags, bundle_name="dags-folder")
        from airflow.serialization.serialized_objects import DagSerialization

        serialized = {}
        for dag_id, dag in bag.dags.items():
            restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
            serialized[dag_id] = sorted(restored.task_ids)

    def category_names(cls):
        return [c.__module__ + "." + c.__qualname__ for c in cls.__mro__]

    print(json.dumps({
        "dags": sorted(bag.dag_ids),
        "files": sorted(bag.file_last_changed),
        "import_errors": bag.import_errors,
        "captured_warnings": {k: list(v) for k, v in bag.captured_warnings.items()},
        "warnings": [
            {"category": category_names(w.category), "file": w.filename, "line": w.lineno, "message": str(w.message)}
            for w in caught
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
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_dag_folder_parses_without_errors_or_deprecation_warnings(parsed):
    result, stderr = parsed

    assert result["import_errors"] == {}
    assert set(result["dags"]) == EXPECTED_DAGS
    # The shared module is not parsed as a DAG file (.airflowignore).
    assert not any(f.endswith("looker_rerun_common.py") for f in result["files"]), result["files"]

    # Warnings the importer caught while executing the DAG files (it re-emits them as
    # UserWarning, so their text carries the real category).
    for path, texts in result["captured_warnings"].items():
        assert not texts, f"warnings while parsing {path}: {texts}"

    deprecations = [
        w for w in result["warnings"] if any(c in DEPRECATION_CATEGORIES for c in w["category"])
    ]
    assert deprecations == [], json.dumps(deprecations, indent=2)
    # Airflow logs some deprecations instead of warning with a category.
    assert "deprecat" not in stderr.lower(), stderr


def test_dags_round_trip_through_serialization(parsed):
    # The scheduler and the UI only ever see the serialized form.
    result, _ = parsed
    assert result["serialized"] == {
        "looker_rerun": ["rerun_failed_deliveries", "wait_for_nightly_batch"],
        "looker_rerun_docker": ["rerun_failed_deliveries", "wait_for_nightly_batch"],
        "looker_rerun_multi": ["rerun_failed_deliveries", "wait_for_nightly_batch"],
    }


def test_dag_level_settings(get_dag):
    for dag_id in EXPECTED_DAGS:
        dag = get_dag(dag_id)
        assert dag.catchup is False
        assert dag.max_active_runs == 1
        assert "looker" in dag.tags
        assert dag.doc_md
