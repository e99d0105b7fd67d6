from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from studio.accounts import selectors, services
from studio.core.api import client_ip
from studio.core.pages import page, paginate
from studio.errors import ApplicationError
from studio.projects import permissions as matrix
from studio.projects import selectors as project_selectors


class LoginView(auth_views.LoginView):
    required_action = matrix.PUBLIC
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    required_action = matrix.PUBLIC


@page(matrix.AUTHENTICATED)
@require_http_methods(["GET", "POST"])
def password_change(request):
    if request.method == "POST":
        try:
            services.user_password_change(
                user=request.user,
                old_password=request.POST.get("old_password", ""),
                new_password=request.POST.get("new_password", ""),
                ip=client_ip(request),
            )
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            update_session_auth_hash(request, request.user)
            messages.success(request, "Your password was changed.")
            return redirect("accounts:password_change")
    return render(request, "accounts/password_change.html", {})


EXPIRY_CHOICES = {"": None, "7": 7, "30": 30, "90": 90, "365": 365}


@page(matrix.AUTHENTICATED)
@require_http_methods(["GET", "POST"])
def tokens(request):
    new_token = None
    if request.method == "POST":
        project = None
        project_id = request.POST.get("project_id") or None
        if project_id:
            project = project_selectors.project_list(user=request.user).filter(pk=project_id).first()
        days = EXPIRY_CHOICES.get(request.POST.get("expires_in_days", ""))
        try:
            if project_id and project is None:
                raise ApplicationError("project: choose one of your projects.")
            _token, new_token = services.api_token_create(
                user=request.user,
                name=request.POST.get("name", ""),
                project=project,
                expires_at=timezone.now() + timedelta(days=days) if days else None,
                ip=client_ip(request),
            )
        except ApplicationError as error:
            messages.error(request, error.message)
    context = {
        "page_obj": paginate(request, selectors.api_token_list(user=request.user)),
        "projects": project_selectors.project_list(user=request.user),
        "new_token": new_token,
        "expiry_choices": [
            ("", "Never"),
            ("7", "7 days"),
            ("30", "30 days"),
            ("90", "90 days"),
            ("365", "1 year"),
        ],
    }
    return render(request, "accounts/tokens.html", context)


@page(matrix.AUTHENTICATED)
@require_http_methods(["POST"])
def token_revoke(request, token_id):
    try:
        token = services.api_token_revoke(user=request.user, token_id=token_id, ip=client_ip(request))
        messages.success(request, f"Token {token.name} was revoked.")
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect("accounts:tokens")


@page(matrix.STAFF)
@require_http_methods(["GET", "POST"])
def users(request):
    if request.method == "POST":
        try:
            user = services.user_create(
                actor=request.user,
                username=request.POST.get("username", ""),
                email=request.POST.get("email", ""),
                password=request.POST.get("password", ""),
                is_staff=request.POST.get("is_staff") == "on",
                ip=client_ip(request),
            )
            messages.success(request, f"User {user.username} was created.")
            return redirect("accounts:users")
        except ApplicationError as error:
            messages.error(request, error.message)
    search = request.GET.get("q", "")
    users_page = paginate(request, selectors.user_list(search=search))
    return render(request, "accounts/users.html", {"page_obj": users_page, "q": search})


@page(matrix.PUBLIC)
@require_http_methods(["GET", "POST"])
def signup(request):
    """Self sign-up, only when STUDIO_SIGNUP_ENABLED is on (off by default: administrators create users)."""
    if not settings.STUDIO_SIGNUP_ENABLED:
        raise Http404
    if request.method == "POST":
        try:
            user = services.user_create(
                actor=None,
                username=request.POST.get("username", ""),
                email=request.POST.get("email", ""),
                password=request.POST.get("password", ""),
                ip=client_ip(request),
            )
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("home")
    return render(request, "accounts/signup.html", {})
