from django.urls import path

from training import apis

P = "projects/<int:project_id>/"
R = P + "runs/<int:run_id>"
S = P + "studies/<int:study_id>"
urlpatterns = [
    path(P + "experiments", apis.ExperimentListCreateApi.as_view(), name="api-experiments"),
    path(P + "experiments/<int:experiment_id>", apis.ExperimentDetailApi.as_view(), name="api-experiment"),
    path(P + "trainers", apis.TrainerListApi.as_view(), name="api-trainers"),
    path(P + "training-jobs", apis.TrainingJobListCreateApi.as_view(), name="api-training-jobs"),
    path(
        P + "training-jobs/script", apis.TrainingScriptJobCreateApi.as_view(), name="api-training-script-job"
    ),
    path(P + "training-jobs/<int:job_id>", apis.TrainingJobDetailApi.as_view(), name="api-training-job"),
    path(
        P + "training-jobs/<int:job_id>/stop", apis.TrainingJobStopApi.as_view(), name="api-training-job-stop"
    ),
    path(P + "runs", apis.RunListCreateApi.as_view(), name="api-runs"),
    path(P + "runs/compare", apis.RunCompareApi.as_view(), name="api-runs-compare"),
    path(R, apis.RunDetailApi.as_view(), name="api-run"),
    path(R + "/logs", apis.RunLogsApi.as_view(), name="api-run-logs"),
    path(R + "/params", apis.RunParamsApi.as_view(), name="api-run-params"),
    path(R + "/metrics", apis.RunMetricsApi.as_view(), name="api-run-metrics"),
    path(R + "/metrics/<path:key>", apis.RunMetricHistoryApi.as_view(), name="api-run-metric-history"),
    path(R + "/artifacts", apis.RunArtifactsApi.as_view(), name="api-run-artifacts"),
    path(R + "/artifacts/<path:path>", apis.RunArtifactDownloadApi.as_view(), name="api-run-artifact"),
    path(R + "/insights", apis.RunInsightsApi.as_view(), name="api-run-insights"),
    path(R + "/confusion-matrix", apis.RunConfusionMatrixApi.as_view(), name="api-run-confusion-matrix"),
    path(P + "studies", apis.StudyListCreateApi.as_view(), name="api-studies"),
    path(S, apis.StudyDetailApi.as_view(), name="api-study"),
    path(S + "/trials", apis.StudyTrialsApi.as_view(), name="api-study-trials"),
    path(S + "/pause", apis.StudyPauseApi.as_view(), name="api-study-pause"),
    path(S + "/resume", apis.StudyResumeApi.as_view(), name="api-study-resume"),
    path(S + "/stop", apis.StudyStopApi.as_view(), name="api-study-stop"),
    path(S + "/extend", apis.StudyExtendApi.as_view(), name="api-study-extend"),
]
