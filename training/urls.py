from django.urls import path

from training.views import compare, debugger, launch, runs, studies

# Mounted under projects/<int:project_id>/training/ (studio/urls.py).
app_name = "training"
urlpatterns = [
    path("new/", launch.training_new, name="new"),
    path("runs/", runs.run_list, name="runs"),
    path("runs/<int:run_id>/", runs.run_detail, name="run"),
    path("runs/compare/", compare.run_compare, name="compare"),
    path("runs/<int:run_id>/debugger/", debugger.run_debugger, name="run-debugger"),
    path(
        "runs/<int:run_id>/debugger/confusion-matrix/",
        debugger.run_confusion_matrix,
        name="run-confusion-matrix",
    ),
    path("studies/", studies.study_list, name="studies"),
    path("studies/new/", studies.study_new, name="study-new"),
    path("studies/<int:study_id>/", studies.study_detail, name="study"),
    path("studies/<int:study_id>/live/", studies.study_live, name="study-live"),
]
