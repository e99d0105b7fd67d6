"""Every datasets API route × every role, plus outsiders (404)."""

import pytest
from rest_framework.test import APIClient

from datasets.tests.factories import DatasetFactory, DatasetJobFactory, RecipeFactory, make_version
from studio.core.testing import UserFactory, api_call, assert_follows_matrix, project_with_roles
from studio.projects.permissions import Role

# (method, route, url template, action, body); bodies are valid so an allowed role gets a 2xx.
ROUTES = [
    ("GET", "projects/<int:project_id>/datasets", "/api/v1/projects/{p}/datasets", "dataset.view", None),
    (
        "POST",
        "projects/<int:project_id>/datasets/upload",
        "/api/v1/projects/{p}/datasets/upload?name=upl&filename=a.csv",
        "dataset.write",
        "raw",
    ),
    (
        "POST",
        "projects/<int:project_id>/datasets/import",
        "/api/v1/projects/{p}/datasets/import",
        "dataset.write",
        {"name": "web", "url": "https://93.184.215.14/data.csv"},
    ),
    (
        "GET",
        "projects/<int:project_id>/datasets/<int:dataset_id>",
        "/api/v1/projects/{p}/datasets/{d}",
        "dataset.view",
        None,
    ),
    (
        "PATCH",
        "projects/<int:project_id>/datasets/<int:dataset_id>",
        "/api/v1/projects/{p}/datasets/{d}",
        "dataset.write",
        {"description": "new words"},
    ),
    (
        "DELETE",
        "projects/<int:project_id>/datasets/<int:dataset_id>",
        "/api/v1/projects/{p}/datasets/{d}",
        "dataset.write",
        None,
    ),
    (
        "GET",
        "projects/<int:project_id>/datasets/<int:dataset_id>/versions",
        "/api/v1/projects/{p}/datasets/{d}/versions",
        "dataset.view",
        None,
    ),
    (
        "GET",
        "projects/<int:project_id>/dataset-versions/<int:version_id>",
        "/api/v1/projects/{p}/dataset-versions/{v}",
        "dataset.view",
        None,
    ),
    (
        "DELETE",
        "projects/<int:project_id>/dataset-versions/<int:version_id>",
        "/api/v1/projects/{p}/dataset-versions/{v}",
        "dataset.write",
        None,
    ),
    (
        "GET",
        "projects/<int:project_id>/dataset-versions/<int:version_id>/profile",
        "/api/v1/projects/{p}/dataset-versions/{v}/profile",
        "dataset.view",
        None,
    ),
    (
        "POST",
        "projects/<int:project_id>/dataset-versions/<int:version_id>/profile",
        "/api/v1/projects/{p}/dataset-versions/{v}/profile",
        "dataset.write",
        {},
    ),
    (
        "GET",
        "projects/<int:project_id>/dataset-versions/<int:version_id>/rows",
        "/api/v1/projects/{p}/dataset-versions/{v}/rows?limit=3&sort=age:desc",
        "dataset.view",
        None,
    ),
    (
        "GET",
        "projects/<int:project_id>/dataset-versions/<int:version_id>/download",
        "/api/v1/projects/{p}/dataset-versions/{v}/download?format=csv",
        "dataset.view",
        None,
    ),
    (
        "GET",
        "projects/<int:project_id>/dataset-versions/<int:version_id>/files/<path:path>",
        "/api/v1/projects/{p}/dataset-versions/{img}/files/cat/a.png",
        "dataset.view",
        None,
    ),
    (
        "GET",
        "projects/<int:project_id>/dataset-jobs",
        "/api/v1/projects/{p}/dataset-jobs",
        "dataset.view",
        None,
    ),
    (
        "GET",
        "projects/<int:project_id>/dataset-jobs/<int:job_id>",
        "/api/v1/projects/{p}/dataset-jobs/{j}",
        "dataset.view",
        None,
    ),
    ("GET", "projects/<int:project_id>/recipes", "/api/v1/projects/{p}/recipes", "dataset.view", None),
    (
        "POST",
        "projects/<int:project_id>/recipes",
        "/api/v1/projects/{p}/recipes",
        "dataset.write",
        {"name": "clean", "version_id": "{v}", "steps": [{"type": "drop", "columns": ["city"]}]},
    ),
    (
        "POST",
        "projects/<int:project_id>/recipes/preview",
        "/api/v1/projects/{p}/recipes/preview",
        "dataset.view",
        {"version_id": "{v}", "steps": [{"type": "drop", "columns": ["city"]}]},
    ),
    (
        "POST",
        "projects/<int:project_id>/recipes/apply",
        "/api/v1/projects/{p}/recipes/apply",
        "dataset.write",
        {"version_id": "{v}", "steps": [{"type": "drop", "columns": ["city"]}]},
    ),
    (
        "GET",
        "projects/<int:project_id>/recipes/<int:recipe_id>",
        "/api/v1/projects/{p}/recipes/{r}",
        "dataset.view",
        None,
    ),
    (
        "PUT",
        "projects/<int:project_id>/recipes/<int:recipe_id>",
        "/api/v1/projects/{p}/recipes/{r}",
        "dataset.write",
        {"name": "renamed", "version_id": "{v}", "steps": [{"type": "drop", "columns": ["age"]}]},
    ),
    (
        "DELETE",
        "projects/<int:project_id>/recipes/<int:recipe_id>",
        "/api/v1/projects/{p}/recipes/{r}",
        "dataset.write",
        None,
    ),
]


@pytest.fixture
def world(db):
    import io

    from PIL import Image

    from datasets import files

    project, users = project_with_roles()
    users["outsider"] = UserFactory(username="ds-outsider")
    dataset = DatasetFactory(project=project, name="customers")
    version = make_version(dataset=dataset)
    images = make_version(dataset=DatasetFactory(project=project, name="pets"))
    images.files_prefix = f"{images.storage_name.rsplit('/', 1)[0]}/files"
    images.kind = "image"
    images.save()
    png = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(png, "PNG")
    target = files.local_path(f"{images.files_prefix}/cat/a.png")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(png.getvalue())
    recipe = RecipeFactory(project=project, dataset=dataset)
    job = DatasetJobFactory(project=project)
    return {
        "project": project,
        "users": users,
        "d": dataset,
        "v": version,
        "img": images,
        "r": recipe,
        "j": job,
    }


def _fill(value, world):
    ids = {key: world[key].pk for key in ("d", "v", "img", "r", "j")}
    ids["p"] = world["project"].pk
    if isinstance(value, str):
        return value.format(**ids) if "{" in value else value
    if isinstance(value, dict):
        return {
            key: (int(_fill(item, world)) if item == "{v}" else _fill(item, world))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_fill(item, world) for item in value]
    return value


@pytest.mark.parametrize("principal", [*Role.values, "outsider"])
@pytest.mark.parametrize(
    ("method", "route", "template", "action", "body"), ROUTES, ids=[f"{r[0]} {r[1]}" for r in ROUTES]
)
def test_dataset_routes_follow_the_matrix(world, principal, method, route, template, action, body):
    client = APIClient()
    client.force_authenticate(world["users"][principal])
    response = api_call(client, method, _fill(template, world), _fill(body, world))
    assert_follows_matrix(response, principal=principal, action=action)


def test_work_dir_clean_removes_only_old_unclaimed_files(db):
    import os
    import time

    from datasets import files
    from datasets.services import work_dir_clean
    from datasets.tests.factories import DatasetJobFactory

    old, fresh, claimed = (
        files.work_dir() / name for name in ("upload-old", "upload-fresh", "upload-claimed")
    )
    for path in (old, fresh, claimed):
        path.write_bytes(b"x")
    long_ago = time.time() - 10_000
    os.utime(old, (long_ago, long_ago))
    os.utime(claimed, (long_ago, long_ago))
    DatasetJobFactory(params={"upload_path": str(claimed)})
    work_dir_clean(older_than_s=5_000)
    assert not old.exists()
    assert fresh.exists()
    assert claimed.exists()
    fresh.unlink()
    claimed.unlink()
