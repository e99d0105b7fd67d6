import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from studio.accounts.models import ApiToken
from studio.audit.services import audit_record
from studio.errors import ApplicationError, NotFound, PermissionDenied

TOKEN_PREFIX = "stu"  # noqa: S105 (a public marker, not a secret)
# Writing last_used_at on every request would turn reads into writes; once a minute is plenty.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def token_hash(raw: str) -> str:
    # Tokens carry 256 bits of randomness, so a plain SHA-256 is the right tool (no salt/stretching needed).
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def api_token_create(
    *, user, name: str, project=None, expires_at=None, ip: str | None = None
) -> tuple[ApiToken, str]:
    """Create a personal token and return it with its plaintext, which is never stored and shown once."""
    name = (name or "").strip()
    if not name:
        raise ApplicationError(
            "name: give the token a name so you can recognise it later.", extra={"field": "name"}
        )
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError("expires_at: the expiry must be in the future.", extra={"field": "expires_at"})
    if project is not None:
        from studio.projects.access import require

        require(user=user, project=project, action="project.view")
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(
        user=user,
        name=name[:100],
        prefix=prefix,
        token_hash=token_hash(raw),
        project=project,
        expires_at=expires_at,
    )
    token.full_clean()
    token.save()
    audit_record(user=user, project=project, action="token.create", target=token, ip=ip)
    return token, raw


@transaction.atomic
def api_token_revoke(*, user, token_id: int, ip: str | None = None) -> ApiToken:
    token = ApiToken.objects.select_for_update().filter(pk=token_id, user=user).first()
    if token is None:
        raise NotFound("No such token.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(user=user, project=token.project, action="token.revoke", target=token, ip=ip)
    return token


def api_token_authenticate(*, raw: str) -> ApiToken | None:
    """Return the active token matching `raw` (recording its use), or None."""
    parts = raw.split("_")
    if len(parts) < 3 or parts[0] != TOKEN_PREFIX:
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=parts[1]).first()
    if token is None or not secrets.compare_digest(token.token_hash, token_hash(raw)):
        return None
    if not token.is_active or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


@transaction.atomic
def user_create(
    *, actor, username: str, password: str, email: str = "", is_staff: bool = False, ip: str | None = None
):
    """Create a user account (instance administrators only; self sign-up is a setting, off by default)."""
    if actor is not None and not actor.is_staff:
        raise PermissionDenied("Only administrators can create users.")
    user_model = get_user_model()
    username = (username or "").strip()
    if user_model.objects.filter(username=username).exists():
        raise ApplicationError(
            f"username: {username!r} is taken.",
            code="username_taken",
            extra={"field": "username"},
            status=409,
        )
    user = user_model(username=username, email=email, is_staff=is_staff)
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise ApplicationError("password: " + " ".join(error.messages), extra={"field": "password"}) from None
    user.set_password(password)
    try:
        user.full_clean()
    except ValidationError as error:
        messages = "; ".join(f"{field}: {' '.join(errs)}" for field, errs in error.message_dict.items())
        raise ApplicationError(messages, extra={"fields": error.message_dict}) from None
    user.save()
    audit_record(user=actor or user, action="user.create", target=user, ip=ip, data={"is_staff": is_staff})
    return user


@transaction.atomic
def user_password_change(*, user, old_password: str, new_password: str, ip: str | None = None) -> None:
    if not user.check_password(old_password):
        raise ApplicationError(
            "old_password: the current password is wrong.", extra={"field": "old_password"}
        )
    try:
        validate_password(new_password, user)
    except ValidationError as error:
        raise ApplicationError(
            "new_password: " + " ".join(error.messages), extra={"field": "new_password"}
        ) from None
    user.set_password(new_password)
    user.save(update_fields=["password"])
    audit_record(user=user, action="user.password_change", target=user, ip=ip)
