import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from studio.projects.models import Project
from studio.projects.services import project_create

DEMO_PROJECT = "Demo project"


def bootstrap(*, admin_password: str | None = None) -> dict:
    """Create the first admin and a demo project once; later calls change nothing.

    Returns what a first-time user needs to sign in (the password only when it was just created).
    """
    user_model = get_user_model()
    username = settings.STUDIO_ADMIN_USERNAME
    result = {"username": username, "password": None, "created": False}
    with transaction.atomic():
        admin = user_model.objects.filter(username=username).first()
        if admin is None:
            password = admin_password or secrets.token_urlsafe(12)
            admin = user_model.objects.create_superuser(
                username=username, email=settings.STUDIO_ADMIN_EMAIL, password=password
            )
            result.update(password=password, created=True, password_from_env=bool(admin_password))
        if not Project.objects.filter(memberships__user=admin).exists() and not Project.objects.exists():
            project_create(
                user=admin,
                name=DEMO_PROJECT,
                description="A place to try Studio: bring a dataset, open a notebook, train a model.",
            )
    return result


class Command(BaseCommand):
    help = "Create the first administrator and a demo project (idempotent)."

    def handle(self, *args, **options):
        import os

        result = bootstrap(admin_password=os.environ.get("STUDIO_ADMIN_PASSWORD") or None)
        if result["created"]:
            shown = "(from STUDIO_ADMIN_PASSWORD)" if result.get("password_from_env") else result["password"]
            self.stdout.write(f"Created administrator {result['username']!r} with password: {shown}")
            self.stdout.write(
                "This password is printed once; change it under your user menu → Change password."
            )
        else:
            self.stdout.write(f"Administrator {result['username']!r} exists already.")
