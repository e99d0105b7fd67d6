"""The runs filter and order language: what it finds, how it sorts, and how it refuses bad input."""

from datetime import timedelta

import pytest
from django.utils import timezone

from studio.core.testing import MembershipFactory, ProjectFactory, UserFactory
from studio.projects.permissions import Role
from training import selectors, tracking
from training.models import Run
from training.search import SearchError, parse_filter, tokenize


@pytest.fixture
def project(db):
    return ProjectFactory(name="Search")


@pytest.fixture
def runs(project):
    """Four runs with params, tags and metrics; one has no metrics at all."""
    user = UserFactory(username="searcher")
    MembershipFactory(project=project, user=user, role=Role.SCIENTIST)
    experiment = tracking.experiment_get_or_create(user=user, project=project, name="churn")
    other = tracking.experiment_get_or_create(user=user, project=project, name="fraud")
    specs = [
        ("alpha", experiment, {"lr": "0.01", "optimizer": "adam"}, {"team": "a"}, {"val_accuracy": 0.95}),
        ("beta", experiment, {"lr": "0.1", "optimizer": "sgd"}, {"team": "b"}, {"val_accuracy": 0.80}),
        ("gamma", experiment, {"lr": "0.001", "optimizer": "Adam"}, {"team": "a"}, {"val_accuracy": 0.91}),
        ("delta", other, {"lr": "32", "note": "it's fine"}, {"team": "a", "my tag": "x"}, {}),
    ]
    made = {}
    for name, exp, params, tags, metrics in specs:
        run = tracking.run_create(
            user=user, project=project, experiment=exp, name=name, params=params, tags=tags
        )
        if metrics:
            tracking.run_log_metrics(
                user=user, run=run, metrics=[{"key": k, "value": v, "step": 1} for k, v in metrics.items()]
            )
        made[name] = run
    tracking.run_update_status(user=user, run=made["alpha"], status="finished")
    tracking.run_update_status(user=user, run=made["beta"], status="failed")
    # a run in another project never shows up
    outsider = ProjectFactory(name="Elsewhere")
    MembershipFactory(project=outsider, user=user, role=Role.SCIENTIST)
    elsewhere = tracking.experiment_get_or_create(user=user, project=outsider, name="churn")
    foreign = tracking.run_create(user=user, project=outsider, experiment=elsewhere, params={"lr": "0.01"})
    tracking.run_log_metrics(user=user, run=foreign, metrics=[{"key": "val_accuracy", "value": 0.99}])
    return made


def names(project, filter="", order_by="", experiment=None):
    ids = list(selectors.run_list(project=project, filter=filter, order_by=order_by, experiment=experiment))
    return [run.name for run in selectors.runs_by_ids(project=project, ids=ids)]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (
            "metrics.val_accuracy > 0.9 and params.lr = '0.01' and tags.team = 'a' and status = 'finished'",
            ["alpha"],
        ),
        ("metrics.val_accuracy >= 0.91", ["alpha", "gamma"]),
        ('metrics.val_accuracy < 0.9 or params.lr = "32"', ["beta", "delta"]),
        ("not (tags.team = 'a')", ["beta"]),
        ("metrics.val_accuracy != 0.8", ["alpha", "gamma"]),
        ("metrics.val_accuracy IS NULL", ["delta"]),
        ("metrics.val_accuracy is not null and params.lr < 0.05", ["alpha", "gamma"]),
        ("params.lr > 0.05", ["beta", "delta"]),  # numeric, not '32' < '0.05' as text
        ("params.lr = 0.1", ["beta"]),
        ("params.lr IN ('0.1', '0.001')", ["beta", "gamma"]),
        ("params.lr NOT IN (0.1, 0.001)", ["alpha", "delta"]),
        ("params.optimizer LIKE 'a%'", ["alpha"]),
        ("params.optimizer ILIKE 'A%'", ["alpha", "gamma"]),
        ("params.optimizer LIKE '_gd'", ["beta"]),
        ("params.note = 'it''s fine'", ["delta"]),
        ("params.note = 'it\\'s fine'", ["delta"]),
        ("tags.`my tag` = 'x'", ["delta"]),
        ("tags.\"my tag\" = 'x'", ["delta"]),
        ("tags.team != 'a'", ["beta"]),
        ("status IN ('finished', 'failed')", ["alpha", "beta"]),
        ("attributes.status = 'running'", ["gamma", "delta"]),
        ("run_name LIKE '%ta'", ["beta", "delta"]),
        ("experiment = 'fraud'", ["delta"]),
        ("params.missing = 'x'", []),
        ("", ["delta", "gamma", "beta", "alpha"]),
    ],
)
def test_filters_find_the_right_runs(project, runs, expression, expected):
    assert sorted(names(project, expression)) == sorted(expected)


def test_time_filters_take_iso_times_and_mlflow_milliseconds(project, runs):
    Run.objects.filter(pk=runs["alpha"].pk).update(created_at=timezone.now() - timedelta(days=3))
    cutoff = timezone.now() - timedelta(days=1)
    assert names(project, f"created_at < '{cutoff.isoformat()}'") == ["alpha"]
    assert sorted(names(project, f"start_time > {int(cutoff.timestamp() * 1000)}")) == [
        "alpha",
        "beta",
        "delta",
        "gamma",
    ]


def test_experiment_narrows_the_list(project, runs):
    fraud = selectors.experiment_get(project=project, name="fraud")
    assert names(project, experiment=fraud) == ["delta"]


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ("metrics.val_accuracy desc", ["alpha", "gamma", "beta", "delta"]),  # no metric: last either way
        ("metrics.val_accuracy", ["beta", "gamma", "alpha", "delta"]),
        ("params.lr", ["gamma", "alpha", "beta", "delta"]),  # 0.001 < 0.01 < 0.1 < 32, as numbers
        ("params.lr DESC", ["delta", "beta", "alpha", "gamma"]),
        ("params.optimizer", ["gamma", "alpha", "beta", "delta"]),  # 'Adam' < 'adam' < 'sgd'; none last
        ("tags.team, name desc", ["gamma", "delta", "alpha", "beta"]),
        ("name", ["alpha", "beta", "delta", "gamma"]),
    ],
)
def test_ordering(project, runs, order_by, expected):
    assert names(project, order_by=order_by) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("metrics.acc >", "expected a value (a number or a quoted string), found the end"),
        ("metrics.acc > 'high'", "metrics.acc compares with a number, not \"'high'\" at position 14"),
        ("metrics.acc LIKE 'a%'", "is a number: LIKE does not apply"),
        ("status = 'done'", "\"'done'\" at position 9 is not a status"),
        ("foo.bar = 1", "unknown prefix 'foo' at position 0"),
        ("colour = 'red'", "unknown attribute 'colour' at position 0"),
        ("params.lr = '0.01", "the string starting at position 12 is not closed"),
        ("params.lr = '0.01'; DROP TABLE training_run; --", "unexpected character ';' at position 18"),
        ("params.lr = 0.01 OR 1=1", "expected a name such as metrics.accuracy"),
        ("params.lr = 0.01 --", "unexpected character"),
        (
            "params.lr == params.optimizer",
            "expected a value (a number or a quoted string), found 'params.optimizer'",
        ),
        ("(params.lr = '1'", "expected ')', found the end"),
        ("params.lr = '1' tags.a = 'b'", "expected AND, OR or the end of the filter, found 'tags.a'"),
        ("id = 1.5", "id compares with an integer"),
        ("created_at > 'yesterday'", "compares with an ISO time"),
        ("name IS NULL", "name is never null"),
        ("metrics. > 1", "expected a key after the '.'"),
        ("(" * 30 + "status = 'failed'" + ")" * 30, "nested deeper than 20 levels"),
        (" and ".join(["status = 'failed'"] * 101), "at most 100 comparisons"),
        ("x" * 4001, "at most 4000 characters"),
    ],
)
def test_bad_filters_name_the_offending_token(project, runs, expression, message):
    with pytest.raises(SearchError) as caught:
        names(project, expression)
    assert message in caught.value.message
    assert caught.value.code == "bad_filter"
    assert caught.value.message.startswith("filter: ")


@pytest.mark.parametrize(
    "expression",
    [
        "params.lr = '0.01'' OR ''1''=''1'",
        "tags.team = 'a\\' OR 1=1 --'",
        "params.\"lr' OR 1=1 --\" = 'x'",
        "params.optimizer LIKE '%'' OR 1=1 --'",
        "run_name = 'x\"); DELETE FROM training_run; --'",
    ],
)
def test_injection_attempts_are_plain_values_that_match_nothing(project, runs, expression):
    assert names(project, expression) == []
    assert Run.objects.filter(project=project).count() == 4


@pytest.mark.parametrize(
    ("order_by", "message"),
    [
        ("metrics.acc 5", "expected ',', ASC, DESC or the end, found '5' at position 12"),
        ("metrics.acc sideways", "unknown attribute 'sideways' at position 12"),
        ("desc", "expected a name such as metrics.accuracy"),
        ("created_at; DROP TABLE x", "unexpected character ';'"),
        (", ".join(["name"] * 6), "at most 5 terms"),
    ],
)
def test_bad_order_by_is_refused(project, runs, order_by, message):
    with pytest.raises(SearchError) as caught:
        names(project, order_by=order_by)
    assert message in caught.value.message
    assert caught.value.code == "bad_order_by"


def test_tokens_keep_positions_and_keys_with_slashes():
    tokens = tokenize("metrics.train/loss<=1e-3 AND tags.`a b`='x'")
    assert [(token.kind, token.value, token.position) for token in tokens] == [
        ("ident", ("metric", "train/loss"), 0),
        ("op", "<=", 18),
        ("number", 0.001, 20),
        ("keyword", "AND", 25),
        ("ident", ("tag", "a b"), 29),
        ("op", "=", 39),
        ("string", "x", 40),
        ("end", None, 43),
    ]


def test_an_empty_filter_is_no_condition():
    assert parse_filter("   ") == parse_filter(None)
