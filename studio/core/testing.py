"""Factories and helpers shared by the tests of every app."""

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


def project_with_roles(name: str = "Team project") -> tuple[Project, dict[str, object]]:
    """A project with one member per role; returns it and {role: user}."""
    project = ProjectFactory(name=name)
    users = {}
    for role in Role.values:
        user = UserFactory(username=f"{role}-{project.slug}")
        MembershipFactory(project=project, user=user, role=role)
        users[role] = user
    return project, users
