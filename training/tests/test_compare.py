"""Comparing runs: differing params, the best value per metric (by direction), overlaid histories and
the parallel-coordinates axes (numeric and categorical params)."""

import pytest

from studio.core.testing import MembershipFactory, ProjectFactory, UserFactory
from studio.projects.permissions import Role
from training import selectors, tracking
from training.charts.compare import overlay_figure, parcoords_dimension, parcoords_figure


@pytest.fixture
def user(db):
    return UserFactory(username="comparer")


@pytest.fixture
def project(user):
    project = ProjectFactory(name="Compare")
    MembershipFactory(project=project, user=user, role=Role.SCIENTIST)
    return project


def make_run(user, project, name, params, curves):
    experiment = tracking.experiment_get_or_create(user=user, project=project, name="sweep")
    run = tracking.run_create(user=user, project=project, experiment=experiment, name=name, params=params)
    for key, values in curves.items():
        batch = [{"key": key, "value": value, "step": step} for step, value in enumerate(values)]
        tracking.run_log_metrics(user=user, run=run, metrics=batch)
    return run


@pytest.mark.parametrize(
    ("key", "lower"),
    [
        ("loss", True),
        ("val_loss", True),
        ("train/Loss", True),
        ("val_error_rate", True),
        ("rmse", True),
        ("val_accuracy", False),
        ("f1", False),
        ("r2", False),
    ],
)
def test_direction_rule(key, lower):
    assert selectors.metric_is_lower_better(key) is lower


def test_best_value_follows_the_direction_and_keeps_ties():
    values = {1: 0.5, 2: 0.2, 3: None, 4: 0.2, 5: 0.9}
    assert selectors.compare_best_run_ids(values, lower_is_better=True) == {2, 4}
    assert selectors.compare_best_run_ids(values, lower_is_better=False) == {5}
    # nothing to single out: equal values, or fewer than two runs with a value
    assert selectors.compare_best_run_ids({1: 0.3, 2: 0.3}, lower_is_better=False) == set()
    assert selectors.compare_best_run_ids({1: 0.3, 2: None}, lower_is_better=False) == set()
    assert selectors.compare_best_run_ids({1: float("nan"), 2: 0.1, 3: 0.4}, lower_is_better=True) == {2}


def test_compare_page_rows_cells_best_and_shared_keys(user, project):
    # given
    first = make_run(
        user,
        project,
        "a",
        {"lr": 0.1, "optimizer": "adam", "seed": 7},
        {"val_loss": [0.9, 0.5], "val_accuracy": [0.6, 0.8], "only_a": [1.0], "system/cpu_percent": [50]},
    )
    second = make_run(
        user,
        project,
        "b",
        {"lr": 0.01, "optimizer": "sgd", "seed": 7},
        {"val_loss": [0.8, 0.3], "val_accuracy": [0.7, 0.75], "system/cpu_percent": [20]},
    )

    # when
    comparison = selectors.compare_page(project=project, run_ids=[second.pk, first.pk])

    # then: columns in the order asked, differing params marked
    assert [run.name for run in comparison["runs"]] == ["b", "a"]
    params = {row["key"]: row for row in comparison["params"]}
    assert params["lr"]["differs"] is True
    assert params["optimizer"]["differs"] is True
    assert params["seed"]["differs"] is False
    assert [cell["value"] for cell in params["lr"]["cells"]] == ["0.01", "0.1"]
    # the best of each metric by its direction; system metrics left out
    metrics = {row["key"]: row for row in comparison["metrics"]}
    assert set(metrics) == {"only_a", "val_accuracy", "val_loss"}
    assert [cell["is_best"] for cell in metrics["val_loss"]["cells"]] == [True, False]
    assert [cell["is_best"] for cell in metrics["val_accuracy"]["cells"]] == [False, True]
    assert [cell["value"] for cell in metrics["only_a"]["cells"]] == [None, 1.0]
    # only the metrics every run has are overlaid, validation metrics first
    assert comparison["shared_metric_keys"] == ["val_accuracy", "val_loss"]


def test_overlaid_histories_have_one_trace_per_run_downsampled(user, project):
    # given: a long run and a short one
    long_run = make_run(user, project, "long", {}, {"loss": [1 / (1 + step) for step in range(5000)]})
    short_run = make_run(user, project, "short", {}, {"loss": [0.5, 0.4, 0.3]})

    # when
    histories = selectors.compare_metric_histories(runs=[long_run, short_run], key="loss", max_points=100)
    figure = overlay_figure("loss", histories)

    # then
    assert [trace["name"] for trace in figure["data"]] == [f"long #{long_run.pk}", f"short #{short_run.pk}"]
    assert len(figure["data"][0]["x"]) <= 100
    assert figure["data"][1]["y"] == [0.5, 0.4, 0.3]
    assert figure["data"][0]["line"]["color"] != figure["data"][1]["line"]["color"]
    assert "downsampled" in figure["layout"]["title"]["text"]


def test_parcoords_numeric_and_categorical_dimensions():
    numeric = parcoords_dimension("params.lr", ["0.1", "0.01", "1e-3"])
    assert numeric == {"label": "params.lr", "values": [0.1, 0.01, 0.001]}

    categorical = parcoords_dimension("params.optimizer", ["sgd", "adam", "sgd"])
    assert categorical["values"] == [1, 0, 1]
    assert categorical["tickvals"] == [0, 1]
    assert categorical["ticktext"] == ["adam", "sgd"]

    # a param some run lacks cannot sit on a numeric axis: categories with a "(none)" tick, last
    missing = parcoords_dimension("params.depth", ["3", None, "5"])
    assert missing["ticktext"] == ["3", "5", "(none)"]
    assert missing["values"] == [0, 2, 1]


def test_parcoords_figure_axes_and_runs_without_the_metric():
    runs = [
        {"name": "a", "params": {"lr": "0.1", "optimizer": "adam"}, "metric": 0.8},
        {"name": "b", "params": {"lr": "0.01", "optimizer": "sgd"}, "metric": 0.9},
        {"name": "c", "params": {"lr": "0.5", "optimizer": "sgd"}, "metric": None},
    ]
    figure = parcoords_figure(runs, ["lr", "optimizer"], "val_accuracy")
    trace = figure["data"][0]
    assert trace["type"] == "parcoords"
    assert [dimension["label"] for dimension in trace["dimensions"]] == [
        "params.lr",
        "params.optimizer",
        "metrics.val_accuracy",
    ]
    assert trace["dimensions"][0]["values"] == [0.1, 0.01]
    assert trace["dimensions"][1]["ticktext"] == ["adam", "sgd"]
    assert trace["dimensions"][2]["values"] == [0.8, 0.9]
    assert trace["line"]["color"] == [0.8, 0.9]
    assert "1 run without val_accuracy left out" in figure["layout"]["title"]["text"]
    assert trace["line"]["reversescale"] is False
    # a loss: the lowest value gets the bright end of the scale
    assert parcoords_figure(runs, ["lr"], "val_loss", lower_is_better=True)["data"][0]["line"]["reversescale"]
