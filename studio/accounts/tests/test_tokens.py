from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from studio.accounts.models import ApiToken
from studio.accounts.services import api_token_create, api_token_revoke, token_hash
from studio.audit.models import AuditEvent
from studio.core.testing import MembershipFactory, ProjectFactory, UserFactory
from studio.errors import ApplicationError

pytestmark = pytest.mark.django_db


def _bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_token_is_stored_hashed_with_a_visible_prefix():
    user = UserFactory()
    token, raw = api_token_create(user=user, name="laptop")
    stored = ApiToken.objects.get(pk=token.pk)
    assert raw not in {stored.token_hash, stored.prefix, stored.name}
    assert stored.token_hash == token_hash(raw)
    assert len(stored.token_hash) == 64
    assert raw.startswith(f"stu_{stored.prefix}_")
    # the plaintext appears nowhere in the row
    assert all(
        raw not in str(value) for value in ApiToken.objects.filter(pk=token.pk).values().first().values()
    )


def test_bearer_token_authenticates_and_records_last_use():
    user = UserFactory(username="alice")
    token, raw = api_token_create(user=user, name="ci")
    response = _bearer(raw).get("/api/v1/me")
    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    assert response.json()["auth"] == "token"
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda raw: raw[:-1] + ("A" if raw[-1] != "A" else "B"),
        lambda raw: "stu_nope_x",
        lambda raw: "garbage",
        lambda raw: raw + " extra",
    ],
)
def test_wrong_tokens_are_401(mangle):
    _token, raw = api_token_create(user=UserFactory(), name="ci")
    response = _bearer(mangle(raw)).get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"authentication_failed", "not_authenticated"}


def test_expired_token_is_refused():
    token, raw = api_token_create(
        user=UserFactory(), name="short", expires_at=timezone.now() + timedelta(hours=1)
    )
    assert _bearer(raw).get("/api/v1/me").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _bearer(raw).get("/api/v1/me")
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_expiry_in_the_past_is_a_clear_error():
    with pytest.raises(ApplicationError, match="expires_at"):
        api_token_create(user=UserFactory(), name="x", expires_at=timezone.now() - timedelta(days=1))


def test_revoked_token_is_refused_and_revocation_is_audited():
    user = UserFactory()
    token, raw = api_token_create(user=user, name="old")
    api_token_revoke(user=user, token_id=token.pk)
    assert _bearer(raw).get("/api/v1/me").status_code == 401
    assert AuditEvent.objects.filter(action="token.revoke", actor=user).exists()


def test_cannot_revoke_someone_elses_token():
    token, _raw = api_token_create(user=UserFactory(), name="theirs")
    client = APIClient()
    client.force_authenticate(UserFactory())
    assert client.delete(f"/api/v1/tokens/{token.pk}").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_project_scoped_token_reaches_only_its_project():
    user = UserFactory()
    mine, other = ProjectFactory(), ProjectFactory()
    MembershipFactory(project=mine, user=user, role="scientist")
    MembershipFactory(project=other, user=user, role="scientist")
    _token, raw = api_token_create(user=user, name="scoped", project=mine)
    client = _bearer(raw)
    assert [p["id"] for p in client.get("/api/v1/projects").json()["results"]] == [mine.pk]
    assert client.get(f"/api/v1/projects/{mine.pk}").status_code == 200
    assert client.get(f"/api/v1/projects/{other.pk}").status_code == 404
    assert client.get(f"/api/v1/projects/{other.pk}/members").status_code == 404


def test_token_for_a_project_you_are_not_in_is_refused():
    user = UserFactory()
    foreign = ProjectFactory()
    client = APIClient()
    client.force_authenticate(user)
    response = client.post("/api/v1/tokens", {"name": "sneaky", "project_id": foreign.pk}, format="json")
    assert response.status_code == 404
    assert not ApiToken.objects.filter(user=user).exists()


def test_token_create_api_shows_the_token_once():
    client = APIClient()
    client.force_authenticate(UserFactory())
    created = client.post("/api/v1/tokens", {"name": "once"}, format="json").json()
    assert created["token"].startswith("stu_")
    listed = client.get("/api/v1/tokens").json()["results"]
    assert [t["name"] for t in listed] == ["once"]
    assert "token" not in listed[0]
    assert _bearer(created["token"]).get("/api/v1/me").status_code == 200


def test_token_create_without_a_name_names_the_field():
    client = APIClient()
    client.force_authenticate(UserFactory())
    response = client.post("/api/v1/tokens", {"name": "   "}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["error"]["message"]
