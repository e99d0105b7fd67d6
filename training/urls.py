from django.urls import path

from training import views

# Mounted under projects/<int:project_id>/training/ (studio/urls.py).
app_name = "training"
urlpatterns = [
    path("runs/", views.run_list, name="runs"),
    path("runs/<int:run_id>/", views.run_detail, name="run"),
]
