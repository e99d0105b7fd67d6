from django.urls import path

from datasets import apis

P = "projects/<int:project_id>/"
urlpatterns = [
    path(P + "datasets", apis.DatasetListApi.as_view(), name="api-datasets"),
    path(P + "datasets/upload", apis.DatasetUploadApi.as_view(), name="api-dataset-upload"),
    path(P + "datasets/import", apis.DatasetUrlImportApi.as_view(), name="api-dataset-import"),
    path(P + "datasets/<int:dataset_id>", apis.DatasetDetailApi.as_view(), name="api-dataset"),
    path(
        P + "datasets/<int:dataset_id>/versions",
        apis.DatasetVersionListApi.as_view(),
        name="api-dataset-versions",
    ),
    path(
        P + "dataset-versions/<int:version_id>",
        apis.DatasetVersionDetailApi.as_view(),
        name="api-dataset-version",
    ),
    path(
        P + "dataset-versions/<int:version_id>/profile",
        apis.DatasetVersionProfileApi.as_view(),
        name="api-dataset-version-profile",
    ),
    path(
        P + "dataset-versions/<int:version_id>/rows",
        apis.DatasetVersionRowsApi.as_view(),
        name="api-dataset-version-rows",
    ),
    path(
        P + "dataset-versions/<int:version_id>/download",
        apis.DatasetVersionDownloadApi.as_view(),
        name="api-dataset-version-download",
    ),
    path(
        P + "dataset-versions/<int:version_id>/files/<path:path>",
        apis.DatasetVersionFileApi.as_view(),
        name="api-dataset-version-file",
    ),
    path(P + "dataset-jobs", apis.DatasetJobListApi.as_view(), name="api-dataset-jobs"),
    path(P + "dataset-jobs/<int:job_id>", apis.DatasetJobDetailApi.as_view(), name="api-dataset-job"),
    path(P + "recipes", apis.RecipeListCreateApi.as_view(), name="api-recipes"),
    path(P + "recipes/preview", apis.RecipePreviewApi.as_view(), name="api-recipe-preview"),
    path(P + "recipes/apply", apis.RecipeApplyApi.as_view(), name="api-recipe-apply"),
    path(P + "recipes/<int:recipe_id>", apis.RecipeDetailApi.as_view(), name="api-recipe"),
]
