from django.contrib.auth import get_user_model

from studio.accounts.models import ApiToken


def api_token_list(*, user):
    return ApiToken.objects.filter(user=user).select_related("project").order_by("-created_at")


def user_list(*, search: str = ""):
    users = get_user_model().objects.order_by("username")
    if search:
        users = users.filter(username__icontains=search)
    return users
