from django.urls import path

from studio.projects import views

app_name = "projects"
urlpatterns = [
    path("", views.project_list, name="list"),
    path("<int:project_id>/", views.project_home, name="home"),
    path("<int:project_id>/settings/", views.project_settings, name="settings"),
    path("<int:project_id>/settings/members/", views.project_members, name="members"),
    path("<int:project_id>/settings/audit/", views.project_audit, name="audit"),
]
