from django.urls import path

from studio.accounts import apis
from studio.projects.apis import WhoAmIApi

urlpatterns = [
    path("me", WhoAmIApi.as_view(), name="api-me"),
    path("tokens", apis.TokenListCreateApi.as_view(), name="api-tokens"),
    path("tokens/<int:token_id>", apis.TokenRevokeApi.as_view(), name="api-token-revoke"),
    path("users", apis.UserListCreateApi.as_view(), name="api-users"),
]
