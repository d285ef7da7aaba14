"""A stand-in for the nightly batch DAG, for tests/dags/test_e2e_docker.py: its one task
publishes the asset the re-run DAG's sensor waits for, as the README tells a batch to."""

from __future__ import annotations

from airflow.sdk import DAG, Asset, task

with DAG(dag_id="nightly_batch", schedule=None, tags=["test"]):

    @task(outlets=[Asset("nightly_batch_warehouse")])
    def publish():
        return "warehouse refreshed"

    publish()
