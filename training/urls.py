from django.urls import path

from training.views import runs

# Mounted under projects/<int:project_id>/training/ (studio/urls.py).
app_name = "training"
urlpatterns = [
    path("runs/", runs.run_list, name="runs"),
    path("runs/<int:run_id>/", runs.run_detail, name="run"),
]
