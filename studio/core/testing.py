"""Factories and helpers shared by the tests of every app."""

import uuid
from functools import cache

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from studio.projects.models import Membership, Project
from studio.projects.permissions import Role

TEST_PASSWORD = "correct-horse-battery-staple-42"  # noqa: S105 (test fixture)


@cache
def _test_password_hash() -> str:
    # Hashing is deliberately slow; one real hash shared by every test user keeps the suite fast.
    return make_password(TEST_PASSWORD)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.LazyFunction(lambda: _test_password_hash())


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.SCIENTIST


def member(
    project: Project,
    *,
    username: str | None = None,
    username_prefix: str | None = None,
    role: str = Role.SCIENTIST,
):
    """A user holding `role` in `project`, named `username`, `username_prefix` plus a random suffix, or
    by the factory's sequence. The suffix matters: UserFactory gets an existing user by its name."""
    if username_prefix is not None:
        username = f"{username_prefix}-{uuid.uuid4().hex[:6]}"
    user = UserFactory(username=username) if username is not None else UserFactory()
    MembershipFactory(project=project, user=user, role=role)
    return user


def project_with_roles(name: str = "Team project") -> tuple[Project, dict[str, object]]:
    """A project with one member per role; returns it and {role: user}."""
    project = ProjectFactory(name=name)
    users = {role: member(project, username=f"{role}-{project.slug}", role=role) for role in Role.values}
    return project, users


OK_STATUSES = {200, 201, 202, 204}


def api_call(client, method: str, url: str, body, *, raw_body: bytes = b"a,b\n1,2\n"):
    """Call an API route in a permission-matrix test: no body, a JSON body, or "raw" for a file body."""
    if body == "raw":
        return client.generic(method, url, raw_body, content_type="application/octet-stream")
    if body is None:
        return getattr(client, method.lower())(url)
    return getattr(client, method.lower())(url, body, format="json")


def assert_follows_matrix(response, *, principal: str, action: str) -> None:
    """An outsider gets 404, a role the matrix allows a 2xx, any other role a 403."""
    from studio.projects import permissions as matrix

    if principal == "outsider":
        assert response.status_code == 404, response.content
    elif matrix.role_allows(principal, action):
        assert response.status_code in OK_STATUSES, (
            principal,
            response.status_code,
            getattr(response, "content", b""),
        )
    else:
        assert response.status_code == 403, (principal, response.status_code)


def wait_for(predicate, *, timeout_s: float = 120, every_s: float = 0.25):
    """Poll `predicate` until it returns something truthy (returned) or `timeout_s` passes (its last value).

    For integration tests that wait on real workers and servers; the caller asserts on the value.
    """
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    return predicate()


def start_worker(queue: str, env: dict, *, concurrency: int = 1):
    """Start a real Celery worker on `queue` in its own session (so a test can SIGKILL its whole group)."""
    import subprocess
    import sys
    import uuid

    from django.conf import settings

    return subprocess.Popen(  # noqa: S603 (our own interpreter and module, fixed arguments)
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "studio",
            "worker",
            "-Q",
            queue,
            "-c",
            str(concurrency),
            "-n",
            f"{queue}-{uuid.uuid4().hex[:6]}@localhost",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "WARNING",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
