"""What a triggered run may choose, and what is refused before anything runs.

Two checkpoints. When the run is created, Airflow validates each param against its JSON
schema (the serialized DAG's params, deep-merged with the conf, as create_dagrun does):
a malformed time or a network mode that is no network is refused there. What a schema
cannot say (since before until, the window's length, the run's data interval, settings
the deployment keeps in Variables) is refused by the run's first task, check_params,
before the sensor waits or a container starts.
"""

from __future__ import annotations

import pendulum
import pytest

from conftest import render

DAG_IDS = ["looker_rerun", "looker_rerun_multi", "looker_rerun_docker"]
# The run of 28 Nov 2026: 10:00-10:00 JST.
INTERVAL = {
    "data_interval_start": pendulum.datetime(2026, 11, 27, 1, tz="UTC"),
    "data_interval_end": pendulum.datetime(2026, 11, 28, 1, tz="UTC"),
}


def create_run_params(dag, conf):
    """The params check Airflow makes when it creates a run with ``conf`` (the scheduler
    and API server hold the serialized DAG)."""
    from airflow.serialization.serialized_objects import DagSerialization

    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    return serialized.params.deep_merge(conf).validate()


@pytest.mark.parametrize("dag_id", DAG_IDS)
@pytest.mark.parametrize(
    ("conf", "param"),
    [
        pytest.param({"since": "2026-11-27"}, "since", id="a date"),
        pytest.param({"until": "yesterday"}, "until", id="a word"),
        pytest.param({"until": "2026-11-28 01:00:00"}, "until", id="no T, no zone"),
        pytest.param({"since": "2026-11-27T01:00:00"}, "since", id="no zone"),
    ],
)
def test_a_malformed_time_is_refused_when_the_run_is_created(get_dag, dag_id, conf, param):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError) as err:
        create_run_params(get_dag(dag_id), conf)
    message = str(err.value)
    assert message.startswith(f"Invalid input for param {param}:"), message
    # What a valid value looks like.
    assert "2026-11-27T01:00:00Z" in message, message


@pytest.mark.parametrize("dag_id", DAG_IDS)
@pytest.mark.parametrize(
    "conf",
    [
        {},
        {"since": "2026-11-27T01:00:00Z", "until": "2026-11-28T01:00:00Z"},
        {"since": "2026-11-27T10:00:00+09:00", "until": "2026-11-28T10:00:00.5+09:00", "dry_run": True},
    ],
)
def test_well_formed_params_are_accepted_when_the_run_is_created(get_dag, dag_id, conf):
    assert create_run_params(get_dag(dag_id), conf)["since"] == conf.get("since")


@pytest.mark.parametrize("network", ["host", "none", "container:4f2a", "default", "../x", ""])
def test_a_network_mode_that_is_no_network_is_refused_when_the_run_is_created(get_dag, network):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="Invalid input for param docker_network"):
        create_run_params(get_dag("looker_rerun_docker"), {"docker_network": network})


def check_params(dag, conf, **run):
    """Run the DAG's check_params task as a worker would; returns its refusal, or None."""
    from airflow.sdk.exceptions import AirflowFailException

    task, context = render(dag.get_task("check_params"), conf=conf, **(run or INTERVAL))
    try:
        # Locked for execution, as the task runner does before it calls execute.
        task.prepare_for_execution().execute(context)
    except AirflowFailException as err:
        return str(err)
    return None


@pytest.mark.parametrize("dag_id", DAG_IDS)
@pytest.mark.parametrize(
    ("conf", "want"),
    [
        pytest.param(
            {"image": "attacker.example/looker-rerun:x"},
            "'image' is not a param of this DAG (the image is the deployment's: the Airflow Variable looker_rerun_image)",
            id="a foreign image",
        ),
        pytest.param(
            {"looker_base_url": "https://collector.example"},
            "'looker_base_url' is not a param of this DAG (the Looker URL is the deployment's: "
            "the Airflow Variable looker_rerun_base_url)",
            id="a foreign base URL",
        ),
        pytest.param({"RERUN_ALLOW_HTTP": "true"}, "'RERUN_ALLOW_HTTP' is not a param of this DAG", id="plain http"),
        pytest.param(
            {"since": "2026-11-28T01:00:00Z", "until": "2026-11-27T01:00:00Z"},
            "since (2026-11-28T01:00:00Z) must be before until (2026-11-27T01:00:00Z)",
            id="since after until",
        ),
        pytest.param(
            {"since": "2026-11-27T01:00:00Z", "until": "2026-11-27T01:00:00Z"},
            "must be before until",
            id="an empty window",
        ),
        pytest.param(
            {"since": "2026-11-20T01:00:00Z", "until": "2026-11-28T01:00:00Z"},
            "the window 2026-11-20T01:00:00Z to 2026-11-28T01:00:00Z is 192 hours long; at most 168 hours "
            "(the Airflow Variable looker_rerun_max_window_hours, 168 unless set)",
            id="eight days",
        ),
        pytest.param(
            {"since": "2026-11-27T01:00:00Z"},
            "give both since and until, or neither",
            id="one bound",
        ),
    ],
)
def test_check_params_refuses_before_anything_runs(get_dag, supervisor_comms, dag_id, conf, want):
    refusal = check_params(get_dag(dag_id), conf)
    assert refusal is not None and refusal.startswith("this run was refused before it started:"), refusal
    assert want in refusal, refusal


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_the_longest_window_is_a_deployment_setting(get_dag, supervisor_comms, monkeypatch, dag_id):
    dag = get_dag(dag_id)
    two_days = {"since": "2026-11-26T01:00:00Z", "until": "2026-11-28T01:00:00Z"}
    assert check_params(dag, two_days) is None
    monkeypatch.setenv("AIRFLOW_VAR_LOOKER_RERUN_MAX_WINDOW_HOURS", "36")
    assert "is 48 hours long; at most 36 hours" in check_params(dag, two_days)
    # Shorter than a scheduled run's window: every run would be refused; say so.
    monkeypatch.setenv("AIRFLOW_VAR_LOOKER_RERUN_MAX_WINDOW_HOURS", "12")
    assert "at least 24" in check_params(dag, {})


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_manual_run_without_a_logical_date(get_dag, supervisor_comms, asset_events, dag_id):
    # `airflow dags trigger` without --logical-date: no data interval. The window must be
    # given; then every task works from it.
    from looker_rerun_common import NIGHTLY_BATCH_DONE

    dag = get_dag(dag_id)
    refusal = check_params(dag, {}, run_after=pendulum.datetime(2026, 11, 28, 6, tz="UTC"))
    assert "the run has no data interval (triggered without a logical date): give both since and until" in refusal

    window = {"since": "2026-11-26T15:00:00Z", "until": "2026-11-27T15:00:00Z"}
    assert check_params(dag, window, run_after=pendulum.datetime(2026, 11, 28, 6, tz="UTC")) is None

    # The sensor waits for the batch of the night the window ends in (the 28th in Tokyo),
    # instead of failing on a data interval the run does not have.
    sensor, context = render(dag.get_task("wait_for_nightly_batch"), conf=window)
    assert sensor.poke(context).is_done is False
    asset_events.add(NIGHTLY_BATCH_DONE, pendulum.datetime(2026, 11, 28, 3, tz="Asia/Tokyo"))
    assert sensor.poke(context).is_done is True

    # The container gets the window as given.
    map_index = 0 if dag_id == "looker_rerun_multi" else -1
    task, _ = render(dag.get_task("rerun_failed_deliveries"), conf=window, map_index=map_index)
    env = task.environment if dag_id == "looker_rerun_docker" else {e.name: e.value for e in task.env_vars}
    assert (env["RERUN_SINCE"], env["RERUN_UNTIL"]) == (window["since"], window["until"])


@pytest.mark.parametrize(
    ("variables", "network", "want"),
    [
        pytest.param({}, None, None, id="no param: the deployment's network"),
        pytest.param({}, "bridge", None, id="the default network"),
        pytest.param({"LOOKER_RERUN_DOCKER_NETWORK": "host"}, None, None, id="the deployment's own host"),
        pytest.param({}, "looker-net", "docker_network 'looker-net' is not a network this deployment allows "
                     "(the Airflow Variable looker_rerun_docker_networks: none listed; default bridge)",
                     id="not listed"),
        pytest.param({"LOOKER_RERUN_DOCKER_NETWORKS": "looker-net, proxy-net"}, "proxy-net", None, id="listed"),
        pytest.param({"LOOKER_RERUN_DOCKER_NETWORKS": "looker-net"}, "other", "looker_rerun_docker_networks: "
                     "looker-net;", id="another"),
    ],
)  # fmt: skip
def test_docker_network_only_from_the_deployments_list(get_dag, supervisor_comms, monkeypatch, variables, network, want):
    for name, value in variables.items():
        monkeypatch.setenv(f"AIRFLOW_VAR_{name}", value)
    refusal = check_params(get_dag("looker_rerun_docker"), {"docker_network": network} if network else {})
    if want is None:
        assert refusal is None
    else:
        assert refusal is not None and want in refusal, refusal
