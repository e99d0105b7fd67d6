"""The tracking API end to end through DRF: shapes, errors, NaN on the wire, artifacts, comparisons."""

import pytest
from rest_framework.test import APIClient

from datasets.tests.factories import DatasetFactory, make_version
from studio.core.testing import MembershipFactory, ProjectFactory, UserFactory
from studio.projects.permissions import Role
from training.models import Metric


@pytest.fixture
def project(db):
    return ProjectFactory(name="Api")


@pytest.fixture
def api(project):
    user = UserFactory(username="api-scientist")
    MembershipFactory(project=project, user=user, role=Role.SCIENTIST)
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def base(project):
    return f"/api/v1/projects/{project.pk}"


def new_run(api, base, **body):
    response = api.post(f"{base}/runs", {"experiment": "churn", **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_create_a_run_with_params_tags_and_a_dataset_version(api, base, project):
    version = make_version(dataset=DatasetFactory(project=project, name="customers"))
    body = new_run(
        api,
        base,
        name="first",
        params={"lr": 0.01, "epochs": 3},
        tags={"team": "a"},
        dataset_version=version.pk,
    )
    assert body["name"] == "first"
    assert body["experiment"] == "churn"
    assert body["status"] == "running"
    assert body["params"] == {"lr": "0.01", "epochs": "3"}
    assert body["tags"] == {"team": "a"}
    assert body["dataset_version"] == {
        "id": version.pk,
        "dataset_id": version.dataset_id,
        "dataset": "customers",
        "number": 1,
    }
    assert body["metrics"] == {}
    assert body["started_at"] is not None
    experiments = api.get(f"{base}/experiments").json()
    assert [(item["name"], item["run_count"]) for item in experiments["results"]] == [("churn", 1)]


def test_create_refuses_unknown_references_and_bad_statuses(api, base):
    assert api.post(f"{base}/runs", {}, format="json").json()["error"]["message"].startswith("experiment:")
    response = api.post(f"{base}/runs", {"experiment": "x", "dataset_version": 999999}, format="json")
    assert response.status_code == 404
    response = api.post(f"{base}/runs", {"experiment": "x", "status": "finished"}, format="json")
    assert response.status_code == 400
    assert "a new run is queued or running" in response.json()["error"]["message"]
    assert api.post(f"{base}/experiments", {"name": "x"}, format="json").status_code == 201
    assert api.post(f"{base}/experiments", {"name": "x"}, format="json").status_code == 409


def test_a_refused_run_leaves_no_new_experiment_behind(api, base):
    response = api.post(f"{base}/runs", {"experiment": "fresh", "params": {"bad key!": 1}}, format="json")
    assert response.status_code == 400
    assert "params.bad key!" in response.json()["error"]["message"]
    assert api.get(f"{base}/experiments", {"name": "fresh"}).json()["count"] == 0


def test_metrics_round_trip_including_nan_and_infinity(api, base):
    run = new_run(api, base)
    points = [{"key": "loss", "value": 1.0 / (step + 1), "step": step} for step in range(20)]
    points += [{"key": "loss", "value": "NaN", "step": 20}, {"key": "gap", "value": "-Infinity", "step": 1}]

    response = api.post(f"{base}/runs/{run['id']}/metrics", {"metrics": points}, format="json")
    assert response.status_code == 201
    assert response.json() == {"stored": 22}

    keys = api.get(f"{base}/runs/{run['id']}/metrics").json()["results"]
    assert [(row["key"], row["value"], row["step"], row["point_count"]) for row in keys] == [
        ("gap", "-Infinity", 1, 1),
        ("loss", None, 20, 21),
    ]
    history = api.get(f"{base}/runs/{run['id']}/metrics/loss?max_points=100").json()
    assert history["downsampled"] is False
    assert history["steps"] == list(range(21))
    assert history["values"][0] == 1.0
    assert history["values"][-1] is None
    assert api.get(f"{base}/runs/{run['id']}").json()["metrics"] == {"gap": "-Infinity", "loss": None}


def test_metric_keys_with_slashes_have_histories(api, base):
    run = new_run(api, base)
    api.post(
        f"{base}/runs/{run['id']}/metrics", {"metrics": [{"key": "train/loss", "value": 2}]}, format="json"
    )
    history = api.get(f"{base}/runs/{run['id']}/metrics/train/loss").json()
    assert (history["key"], history["values"]) == ("train/loss", [2.0])
    assert api.get(f"{base}/runs/{run['id']}/metrics/nope").status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"metrics": [{"key": "loss", "value": "high"}]}, "metrics[0].value: expected a number"),
        ({"points": []}, 'metrics: send {"metrics"'),
        ([1, 2], 'metrics: send {"metrics"'),
        ({"metrics": [{"key": "l", "value": 1}] * 10_001}, "at most 10000 points per batch"),
    ],
)
def test_bad_metric_batches_are_400_with_a_clear_message(api, base, body, message):
    run = new_run(api, base)
    response = api.post(f"{base}/runs/{run['id']}/metrics", body, format="json")
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert not Metric.objects.filter(run_id=run["id"]).exists()


def test_a_history_of_many_points_is_downsampled(api, base):
    run = new_run(api, base)
    for start in range(0, 30_000, 10_000):
        batch = [
            {"key": "loss", "value": float(step % 97), "step": step} for step in range(start, start + 10_000)
        ]
        api.post(f"{base}/runs/{run['id']}/metrics", {"metrics": batch}, format="json")
    history = api.get(f"{base}/runs/{run['id']}/metrics/loss?max_points=200").json()
    assert history["downsampled"] is True
    assert history["total_points"] == 30_000
    assert len(history["values"]) <= 200
    assert min(history["values"]) == 0.0
    assert max(history["values"]) == 96.0
    assert api.get(f"{base}/runs/{run['id']}/metrics/loss?max_points=1").status_code == 400


def test_params_are_immutable_over_the_api(api, base):
    run = new_run(api, base, params={"lr": 0.01})
    ok = api.post(f"{base}/runs/{run['id']}/params", {"params": {"lr": 0.01, "seed": 7}}, format="json")
    assert ok.json() == {"params": {"lr": "0.01", "seed": "7"}}
    conflict = api.post(f"{base}/runs/{run['id']}/params", {"params": {"lr": 0.1}}, format="json")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "param_immutable"


def test_list_filters_and_orders_and_explains_bad_filters(api, base):
    for name, accuracy, lr in (("a", 0.95, 0.01), ("b", 0.80, 0.1), ("c", 0.91, 0.001)):
        run = new_run(api, base, name=name, params={"lr": lr})
        api.post(
            f"{base}/runs/{run['id']}/metrics",
            {"metrics": [{"key": "acc", "value": accuracy}]},
            format="json",
        )
    new_run(api, base, name="other", experiment="fraud")

    response = api.get(
        f"{base}/runs", {"filter": "metrics.acc > 0.9", "order_by": "metrics.acc desc", "experiment": "churn"}
    )
    body = response.json()
    assert body["count"] == 2
    assert [(run["name"], run["metrics"]["acc"], run["params"]["lr"]) for run in body["results"]] == [
        ("a", 0.95, "0.01"),
        ("c", 0.91, "0.001"),
    ]
    paged = api.get(f"{base}/runs", {"order_by": "params.lr", "page_size": 2}).json()
    assert [run["name"] for run in paged["results"]] == ["c", "a"]
    assert paged["count"] == 4

    bad = api.get(f"{base}/runs", {"filter": "metrics.acc > 'x'"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "bad_filter"
    assert bad.json()["error"]["detail"] == {"field": "filter", "position": 14}
    assert api.get(f"{base}/runs", {"experiment": "nope"}).status_code == 404


def test_patch_renames_retags_and_moves_status(api, base):
    run = new_run(api, base, tags={"team": "a", "stage": "dev"})
    body = api.patch(
        f"{base}/runs/{run['id']}",
        {"name": "renamed", "tags": {"stage": None}, "status": "finished"},
        format="json",
    ).json()
    assert (body["name"], body["tags"], body["status"]) == ("renamed", {"team": "a"}, "finished")
    assert body["ended_at"] is not None
    again = api.patch(f"{base}/runs/{run['id']}", {"status": "running"}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "bad_transition"


def test_artifacts_upload_list_and_download(api, base):
    run = new_run(api, base)
    created = api.generic(
        "POST",
        f"{base}/runs/{run['id']}/artifacts?path=model/weights.bin",
        b"\x00\x01weights",
        content_type="application/octet-stream",
    )
    assert created.status_code == 201
    assert created.json()["size_bytes"] == 9
    listed = api.get(f"{base}/runs/{run['id']}/artifacts").json()["results"]
    assert [item["path"] for item in listed] == ["model/weights.bin"]
    download = api.get(f"{base}/runs/{run['id']}/artifacts/model/weights.bin")
    assert b"".join(download.streaming_content) == b"\x00\x01weights"
    assert download["Content-Disposition"] == 'attachment; filename="weights.bin"'
    assert download["Content-Length"] == "9"
    assert api.get(f"{base}/runs/{run['id']}/artifacts/../../secret").status_code in (400, 404)
    missing_path = api.generic(
        "POST", f"{base}/runs/{run['id']}/artifacts", b"x", content_type="application/octet-stream"
    )
    assert missing_path.status_code == 400


def test_compare_lists_differences(api, base):
    first = new_run(api, base, params={"lr": 0.1, "seed": 1})
    second = new_run(api, base, params={"lr": 0.2, "seed": 1})
    body = api.get(f"{base}/runs/compare", {"ids": f"{first['id']},{second['id']}"}).json()
    assert [run["id"] for run in body["runs"]] == [first["id"], second["id"]]
    assert body["params"] == [
        {"key": "lr", "values": {str(first["id"]): "0.1", str(second["id"]): "0.2"}, "differs": True},
        {"key": "seed", "values": {str(first["id"]): "1", str(second["id"]): "1"}, "differs": False},
    ]
    assert api.get(f"{base}/runs/compare", {"ids": "1,x"}).status_code == 400


def test_runs_of_another_project_are_404(api, base):
    other = ProjectFactory(name="Hidden")
    owner = UserFactory(username="hidden-owner")
    MembershipFactory(project=other, user=owner, role=Role.OWNER)
    foreign_client = APIClient()
    foreign_client.force_authenticate(owner)
    foreign = foreign_client.post(
        f"/api/v1/projects/{other.pk}/runs", {"experiment": "x"}, format="json"
    ).json()
    assert api.get(f"{base}/runs/{foreign['id']}").status_code == 404
    response = api.post(
        f"{base}/runs/{foreign['id']}/metrics", {"metrics": [{"key": "a", "value": 1}]}, format="json"
    )
    assert response.status_code == 404
