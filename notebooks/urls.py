from django.urls import path

from notebooks import views

# Mounted under projects/<int:project_id>/notebooks/ (studio/urls.py); the servers themselves are
# proxied under /notebooks/<project_id>/<server_id>/ by notebooks.proxy (studio/asgi.py).
app_name = "notebooks"
urlpatterns = [
    path("", views.notebooks_page, name="lab"),
]
