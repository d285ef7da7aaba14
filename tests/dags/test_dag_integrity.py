"""The DAG folder parses cleanly: no import errors, no deprecation warnings, serializable."""

from __future__ import annotations

import json
import os
import shutil
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


# A Docker-only deployment has neither the cncf-kubernetes provider nor the kubernetes
# client: importing them fails, and their packages' metadata (where Airflow discovers its
# providers) is gone, as if they were not installed.
WITHOUT_KUBERNETES = textwrap.dedent(
    """
    import importlib.metadata, sys
    import importlib_metadata

    HIDDEN = {"apache-airflow-providers-cncf-kubernetes", "kubernetes", "kubernetes-asyncio"}

    class NoKubernetes:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("kubernetes", "kubernetes_asyncio") or name.startswith("airflow.providers.cncf"):
                raise ModuleNotFoundError(f"No module named {name!r} (a Docker-only deployment)", name=name)
            return None

    sys.meta_path.insert(0, NoKubernetes())

    def without_kubernetes(distributions):
        def filtered(**kwargs):
            for dist in distributions(**kwargs):
                if (dist.metadata["Name"] or "").lower().replace("_", "-") not in HIDDEN:
                    yield dist
        return filtered

    importlib.metadata.distributions = without_kubernetes(importlib.metadata.distributions)
    importlib_metadata.distributions = without_kubernetes(importlib_metadata.distributions)
    """
)


def parse(dags, prelude=""):
    """Parse a dags folder in a fresh interpreter; returns (PARSE-RESULT, other output)."""
    proc = subprocess.run(
        [sys.executable, "-c", prelude + PARSE_SCRIPT, str(dags)],
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


@pytest.fixture(scope="module")
def parsed():
    return parse(DAGS)


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
        "looker_rerun": ["check_params", "check_summary", "rerun_failed_deliveries", "wait_for_nightly_batch"],
        "looker_rerun_docker": ["check_params", "check_summary", "rerun_failed_deliveries", "wait_for_nightly_batch"],
        "looker_rerun_multi": ["check_params", "check_summaries", "rerun_failed_deliveries", "wait_for_nightly_batch"],
    }


@pytest.mark.parametrize(
    ("files", "dags", "import_error"),
    [
        # What the README's install tells a Docker-only deployment to copy.
        (["looker_rerun_docker.py", "looker_rerun_common.py"], ["looker_rerun_docker"], None),
        # The Kubernetes DAG does need the provider: proof that it is really missing.
        (["looker_rerun.py", "looker_rerun_common.py"], [], "(a Docker-only deployment)"),
    ],
)
def test_docker_only_deployment_needs_no_kubernetes(tmp_path, files, dags, import_error):
    for name in files:
        shutil.copy(DAGS / name, tmp_path)
    result, output = parse(tmp_path, prelude=WITHOUT_KUBERNETES)

    assert result["dags"] == dags
    if import_error is None:
        assert result["import_errors"] == {}, result["import_errors"]
        assert result["serialized"] == {
            "looker_rerun_docker": ["check_params", "check_summary", "rerun_failed_deliveries", "wait_for_nightly_batch"]
        }
    else:
        errors = list(result["import_errors"].values())
        assert len(errors) == 1 and import_error in errors[0], result["import_errors"]


def test_dag_level_settings(get_dag):
    for dag_id in EXPECTED_DAGS:
        dag = get_dag(dag_id)
        assert dag.catchup is False
        assert dag.max_active_runs == 1
        assert "looker" in dag.tags
        assert dag.doc_md
