from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from studio.audit import selectors as audit_selectors
from studio.audit import services as audit_services
from studio.audit.apis import AuditFilterSerializer
from studio.audit.selectors import FILTER_FIELDS
from studio.audit.services import activity_payload
from studio.core.api import client_ip
from studio.core.pages import page, paginate
from studio.errors import ApplicationError
from studio.projects import permissions as matrix
from studio.projects import selectors, services
from studio.projects.permissions import Role


def _form_error(request, error: ApplicationError) -> None:
    messages.error(request, error.message)


@page(matrix.AUTHENTICATED)
@require_http_methods(["GET", "POST"])
def project_list(request):
    if request.method == "POST":
        try:
            project = services.project_create(
                user=request.user,
                name=request.POST.get("name", ""),
                description=request.POST.get("description", ""),
                ip=client_ip(request),
            )
            return redirect("projects:home", project_id=project.pk)
        except ApplicationError as error:
            _form_error(request, error)
    show_archived = request.GET.get("archived") == "1"
    projects = selectors.project_list(user=request.user, include_archived=show_archived)
    query = request.GET.get("q", "").strip()
    if query:
        projects = projects.filter(name__icontains=query)
    return render(
        request,
        "projects/list.html",
        {"page_obj": paginate(request, projects), "q": query, "archived": show_archived},
    )


@page("project.view")
def project_home(request, project_id):
    project = request.access.project
    request.session["last_project_id"] = project.pk
    activity = [activity_payload(event) for event in audit_selectors.activity_list(project=project, limit=20)]
    context = {
        "members": selectors.membership_list(project=project)[:12],
        "counts": selectors.project_counts(project=project),
        "activity": activity,
    }
    return render(request, "projects/home.html", context)


@page("project.view")
@require_http_methods(["GET", "POST"])
def project_settings(request, project_id):
    project = request.access.project
    if request.method == "POST":
        try:
            if request.POST.get("op") == "archive":
                services.project_set_archived(
                    user=request.user, project=project, is_archived=True, ip=client_ip(request)
                )
                messages.success(request, "The project is archived: it is read-only until unarchived.")
            elif request.POST.get("op") == "unarchive":
                services.project_set_archived(
                    user=request.user, project=project, is_archived=False, ip=client_ip(request)
                )
                messages.success(request, "The project is active again.")
            else:
                services.project_update(
                    user=request.user,
                    project=project,
                    name=request.POST.get("name"),
                    description=request.POST.get("description"),
                    ip=client_ip(request),
                )
                messages.success(request, "Saved.")
            return redirect("projects:settings", project_id=project.pk)
        except ApplicationError as error:
            _form_error(request, error)
    return render(request, "projects/settings.html", {})


@page("member.view")
@require_http_methods(["GET", "POST"])
def project_members(request, project_id):
    project = request.access.project
    if request.method == "POST":
        op = request.POST.get("op")
        try:
            if op == "add":
                membership = services.membership_add(
                    user=request.user,
                    project=project,
                    invitee=request.POST.get("user", ""),
                    role=request.POST.get("role", ""),
                    ip=client_ip(request),
                )
                messages.success(request, f"{membership.user.username} joined as {membership.role}.")
            elif op == "role":
                services.membership_change_role(
                    user=request.user,
                    project=project,
                    member_user_id=int(request.POST.get("user_id", 0)),
                    role=request.POST.get("role", ""),
                    ip=client_ip(request),
                )
                messages.success(request, "Role changed.")
            elif op == "remove":
                member_user_id = int(request.POST.get("user_id", 0))
                services.membership_remove(
                    user=request.user, project=project, member_user_id=member_user_id, ip=client_ip(request)
                )
                if member_user_id == request.user.pk:
                    messages.success(request, f"You left {project.name}.")
                    return redirect("projects:list")
                messages.success(request, "Member removed.")
            return redirect("projects:members", project_id=project.pk)
        except (ApplicationError, ValueError) as error:
            _form_error(
                request, error if isinstance(error, ApplicationError) else ApplicationError(str(error))
            )
    context = {
        "page_obj": paginate(request, selectors.membership_list(project=project)),
        "roles": Role.choices,
        "may_manage": request.access.allows("member.manage"),
    }
    return render(request, "projects/members.html", context)


@page("audit.view")
@require_http_methods(["GET", "POST"])
def project_audit(request, project_id):
    project = request.access.project
    filter_form = AuditFilterSerializer(
        data={key: request.GET[key] for key in FILTER_FIELDS if request.GET.get(key)}
    )
    if filter_form.is_valid():
        filters = {key: request.GET[key] for key in filter_form.validated_data}
    else:
        messages.error(
            request, "; ".join(f"{field}: {' '.join(errors)}" for field, errors in filter_form.errors.items())
        )
        filters = {}
    if request.method == "POST":
        try:
            audit_services.audit_export_start(
                user=request.user, project=project, filters=filters, ip=client_ip(request)
            )
            messages.success(request, "Export started; it appears below when ready.")
        except ApplicationError as error:
            _form_error(request, error)
        return redirect(request.get_full_path())
    page_obj = paginate(request, audit_selectors.audit_event_queryset(project=project, filters=filters))
    context = {
        "page_obj": page_obj,
        "filters": filters,
        "exports": audit_selectors.audit_export_list(project=project),
    }
    return render(request, "projects/audit.html", context)
