import pytest
from rest_framework.test import APIClient

from studio.accounts.models import User
from studio.core.testing import UserFactory

pytestmark = pytest.mark.django_db


def _staff_client():
    client = APIClient()
    client.force_authenticate(UserFactory(username="root", is_staff=True))
    return client


def test_admin_creates_a_user_who_can_sign_in(client):
    response = _staff_client().post(
        "/api/v1/users",
        {"username": "bob", "password": "a-Long-passw0rd!", "email": "bob@example.com"},
        format="json",
    )
    assert response.status_code == 201
    assert User.objects.get(username="bob").check_password("a-Long-passw0rd!")
    assert client.login(username="bob", password="a-Long-passw0rd!")


def test_weak_password_is_refused_with_a_reason():
    response = _staff_client().post("/api/v1/users", {"username": "weak", "password": "123"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("password:")
    assert not User.objects.filter(username="weak").exists()


def test_duplicate_username_is_409():
    UserFactory(username="taken")
    response = _staff_client().post(
        "/api/v1/users", {"username": "taken", "password": "a-Long-passw0rd!"}, format="json"
    )
    assert response.status_code == 409


def test_sign_in_page_and_sign_out(client):
    UserFactory(username="carol")
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert b"Sign in" in page.content
    response = client.post(
        "/accounts/login/", {"username": "carol", "password": "correct-horse-battery-staple-42"}
    )
    assert response.status_code == 302
    assert client.get("/projects/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/projects/").status_code == 302


def test_password_change_page(client):
    from studio.core.testing import TEST_PASSWORD

    user = UserFactory(username="dave")
    client.force_login(user)
    response = client.post(
        "/accounts/password/", {"old_password": "wrong", "new_password": "N3w-passphrase!"}, follow=True
    )
    assert b"current password is wrong" in response.content
    client.post("/accounts/password/", {"old_password": TEST_PASSWORD, "new_password": "N3w-passphrase!"})
    user.refresh_from_db()
    assert user.check_password("N3w-passphrase!")
    # the session survives the change
    assert client.get("/projects/").status_code == 200


def test_signup_is_off_by_default(client):
    from django.conf import settings

    assert settings.STUDIO_SIGNUP_ENABLED is False
    assert client.get("/accounts/signup/").status_code == 404


def test_signup_when_enabled(client, settings):
    settings.STUDIO_SIGNUP_ENABLED = True
    response = client.post("/accounts/signup/", {"username": "erin", "password": "a-Long-passw0rd!"})
    assert response.status_code == 302
    assert User.objects.filter(username="erin", is_staff=False).exists()
    assert client.get("/api/v1/me").json()["username"] == "erin"
