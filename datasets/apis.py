import mimetypes

from django.conf import settings
from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.parsers import BaseParser, DataAndFiles, JSONParser
from rest_framework.response import Response

from datasets import downloads, files, selectors, services
from datasets.models import Kind
from studio.core.api import ProjectScopedApi
from studio.errors import ApplicationError, NotFound
from studio.storage import clean_artifact_name


class DatasetOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    kind = serializers.CharField()
    version_count = serializers.IntegerField(required=False)
    latest_version_id = serializers.IntegerField(required=False, allow_null=True)
    latest_number = serializers.IntegerField(required=False, allow_null=True)
    latest_rows = serializers.IntegerField(required=False, allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class VersionRef(serializers.Serializer):
    id = serializers.IntegerField()
    dataset_id = serializers.IntegerField()
    dataset = serializers.CharField(source="dataset.name")
    number = serializers.IntegerField()


class VersionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    dataset_id = serializers.IntegerField()
    dataset = serializers.CharField(source="dataset.name")
    number = serializers.IntegerField()
    sha256 = serializers.CharField()
    source_format = serializers.CharField()
    source_name = serializers.CharField()
    kind = serializers.CharField()
    schema = serializers.JSONField()
    row_count = serializers.IntegerField()
    size_bytes = serializers.IntegerField()
    details = serializers.JSONField()
    parent = VersionRef(allow_null=True)
    recipe_id = serializers.IntegerField(allow_null=True)
    recipe_steps = serializers.JSONField()
    profile_status = serializers.CharField()
    profile_error = serializers.CharField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()


class JobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    dataset_name = serializers.CharField()
    progress = serializers.FloatField()
    message = serializers.CharField()
    error = serializers.CharField()
    error_code = serializers.CharField()
    version_id = serializers.IntegerField(allow_null=True)
    dataset_id = serializers.IntegerField(source="version.dataset_id", allow_null=True, default=None)
    is_duplicate = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class RecipeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    dataset_id = serializers.IntegerField(allow_null=True)
    steps = serializers.JSONField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class DatasetListApi(ProjectScopedApi):
    required_action = "dataset.view"

    @extend_schema(
        responses=DatasetOutput(many=True),
        parameters=[
            OpenApiParameter("search", str),
            OpenApiParameter("kind", str, enum=Kind.values),
            OpenApiParameter("name", str),
        ],
    )
    def get(self, request, project_id):
        datasets = selectors.dataset_list(
            project=self.project,
            search=request.query_params.get("search", ""),
            kind=request.query_params.get("kind", ""),
        )
        if request.query_params.get("name"):
            datasets = datasets.filter(name=request.query_params["name"])
        return self.paginate(request, datasets, DatasetOutput)


class _UnreadBody(BaseParser):
    """Accept any body and read none of it: the upload view streams the body to disk itself.

    DRF's CSRF check touches request.POST, which parses with the view's parsers; with none at all
    every browser upload would be refused with 415.
    """

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return DataAndFiles({}, {})


class DatasetUploadApi(ProjectScopedApi):
    """Upload a file as the body (any content type) or as multipart field `file`; converted by a worker."""

    required_action = "dataset.write"
    parser_classes = [_UnreadBody]  # the body is streamed to disk here, never parsed into memory

    @extend_schema(
        parameters=[
            OpenApiParameter("name", str, required=True, description="dataset name (new or existing)"),
            OpenApiParameter("filename", str, description="original file name (sets the format)"),
        ],
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={202: JobOutput},
    )
    def post(self, request, project_id):
        name = request.query_params.get("name", "")
        filename = request.query_params.get("filename", "")
        content_type = request.META.get("CONTENT_TYPE", "")
        if content_type.startswith("multipart/form-data"):
            upload = request._request.FILES.get("file")
            if upload is None:
                raise ApplicationError(
                    "file: the multipart body has no 'file' field.", extra={"field": "file"}
                )
            filename = filename or upload.name
            stream, expected = upload, upload.size
            name = name or request._request.POST.get("name", "")
        else:
            length = request.META.get("CONTENT_LENGTH")
            stream, expected = request._request, int(length) if length and length.isdigit() else None
        if not filename:
            raise ApplicationError(
                "filename: say what the file is called (e.g. ?filename=sales.csv).",
                extra={"field": "filename"},
            )
        if not name:
            name = filename.rsplit("/", 1)[-1].rsplit(".", 1)[0][:100]
        path, sha256, size = files.receive_upload(
            stream, expected_bytes=expected, max_bytes=settings.STUDIO_MAX_UPLOAD_BYTES
        )
        job = services.dataset_upload_start(
            user=request.user,
            project=self.project,
            dataset_name=name,
            upload_path=path,
            original_name=filename.rsplit("/", 1)[-1],
            source_sha256=sha256,
            size_bytes=size,
            ip=self.ip,
        )
        return Response(JobOutput(job).data, status=202)


class DatasetUrlImportApi(ProjectScopedApi):
    required_action = "dataset.write"

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        url = serializers.CharField(max_length=2000)

    @extend_schema(request=InputSerializer, responses={202: JobOutput})
    def post(self, request, project_id):
        data = self.validated(request)
        job = services.dataset_url_import_start(
            user=request.user, project=self.project, dataset_name=data["name"], url=data["url"], ip=self.ip
        )
        return Response(JobOutput(job).data, status=202)


class DatasetDetailApi(ProjectScopedApi):
    required_action = {"GET": "dataset.view", "PATCH": "dataset.write", "DELETE": "dataset.write"}

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100, required=False)
        description = serializers.CharField(max_length=5000, required=False, allow_blank=True)

    def _dataset(self, dataset_id):
        return selectors.dataset_list(project=self.project).filter(
            pk=dataset_id
        ).first() or selectors.dataset_get(project=self.project, dataset_id=dataset_id)

    @extend_schema(responses=DatasetOutput)
    def get(self, request, project_id, dataset_id):
        return Response(DatasetOutput(self._dataset(dataset_id)).data)

    @extend_schema(request=InputSerializer, responses=DatasetOutput)
    def patch(self, request, project_id, dataset_id):
        data = self.validated(request)
        dataset = selectors.dataset_get(project=self.project, dataset_id=dataset_id)
        services.dataset_update(user=request.user, dataset=dataset, ip=self.ip, **data)
        return Response(DatasetOutput(self._dataset(dataset_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, project_id, dataset_id):
        dataset = selectors.dataset_get(project=self.project, dataset_id=dataset_id)
        services.dataset_delete(user=request.user, dataset=dataset, ip=self.ip)
        return Response(status=204)


class DatasetVersionListApi(ProjectScopedApi):
    required_action = "dataset.view"

    @extend_schema(responses=VersionOutput(many=True))
    def get(self, request, project_id, dataset_id):
        dataset = selectors.dataset_get(project=self.project, dataset_id=dataset_id)
        return self.paginate(request, selectors.version_list(dataset=dataset), VersionOutput)


class DatasetVersionDetailApi(ProjectScopedApi):
    required_action = {"GET": "dataset.view", "DELETE": "dataset.write"}

    @extend_schema(responses=VersionOutput)
    def get(self, request, project_id, version_id):
        version = selectors.version_get(project=self.project, version_id=version_id, with_profile=False)
        body = VersionOutput(version).data
        lineage = selectors.version_lineage(version=version)
        body["lineage"] = {
            key: VersionRef(value, many=True).data for key, value in lineage.items() if key != "parent"
        }
        return Response(body)

    @extend_schema(responses={204: None})
    def delete(self, request, project_id, version_id):
        version = selectors.version_get(project=self.project, version_id=version_id, with_profile=False)
        services.dataset_version_delete(user=request.user, version=version, ip=self.ip)
        return Response(status=204)


class DatasetVersionProfileApi(ProjectScopedApi):
    required_action = {"GET": "dataset.view", "POST": "dataset.write"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, project_id, version_id):
        version = selectors.version_get(project=self.project, version_id=version_id)
        return Response(
            {
                "status": version.profile_status,
                "error": version.profile_error,
                "profiled_at": version.profiled_at,
                "profile": version.profile,
            }
        )

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT}, summary="Compute the profile again")
    def post(self, request, project_id, version_id):
        version = selectors.version_get(project=self.project, version_id=version_id, with_profile=False)
        version = services.dataset_version_profile_start(user=request.user, version=version, ip=self.ip)
        return Response({"status": version.profile_status}, status=202)


class RowsQuery(serializers.Serializer):
    offset = serializers.IntegerField(min_value=0, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=50)
    sort = serializers.CharField(
        required=False, allow_blank=True, help_text="column:asc or column:desc, comma-sep"
    )
    expression = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class DatasetVersionRowsApi(ProjectScopedApi):
    required_action = "dataset.view"

    @extend_schema(parameters=[RowsQuery], responses=OpenApiTypes.OBJECT)
    def get(self, request, project_id, version_id):
        query = self.validated(request, RowsQuery, data=request.query_params)
        version = selectors.version_get(project=self.project, version_id=version_id, with_profile=False)
        sort = []
        for item in filter(None, (query.get("sort") or "").split(",")):
            column, _, direction = item.rpartition(":") if ":" in item else (item, "", "asc")
            if direction not in ("asc", "desc"):
                raise ApplicationError(
                    f"sort: direction {direction!r} must be asc or desc.", extra={"field": "sort"}
                )
            sort.append((column, direction))
        rows = selectors.version_rows(
            version=version,
            offset=query["offset"],
            limit=query["limit"],
            sort=sort,
            expression=query.get("expression") or None,
        )
        return Response(rows)


class DatasetVersionDownloadApi(ProjectScopedApi):
    required_action = "dataset.view"

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["parquet", "csv"])],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    def get(self, request, project_id, version_id):
        version = selectors.version_get(project=self.project, version_id=version_id, with_profile=False)
        file_format = request.query_params.get("format", "parquet")
        stem = f"{version.dataset.name}-v{version.number}".replace('"', "")
        if file_format == "parquet":
            response = StreamingHttpResponse(
                downloads.file_chunks(request._request, files.local_path(version.storage_name)),
                content_type="application/vnd.apache.parquet",
            )
        elif file_format == "csv":
            response = StreamingHttpResponse(
                downloads.csv_chunks(request._request, files.local_path(version.storage_name)),
                content_type="text/csv; charset=utf-8",
            )
        else:
            raise ApplicationError("format: choose parquet or csv.", extra={"field": "format"})
        response["Content-Disposition"] = f'attachment; filename="{stem}.{file_format}"'
        return response


class DatasetVersionFileApi(ProjectScopedApi):
    """A file of an image dataset (`?thumbnail=1` for a small JPEG)."""

    required_action = "dataset.view"

    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY})
    def get(self, request, project_id, version_id, path):
        version = selectors.version_get(project=self.project, version_id=version_id, with_profile=False)
        if not version.files_prefix:
            raise NotFound("This version has no files.")
        try:
            name = f"{version.files_prefix}/{clean_artifact_name(path)}"
        except Exception:
            raise NotFound("No such file.") from None
        local = files.local_path(name)
        if not local.is_file():
            raise NotFound("No such file.")
        if request.query_params.get("thumbnail"):
            return FileResponse(downloads.thumbnail(local), content_type="image/jpeg")
        content_type = mimetypes.guess_type(local.name)[0] or "application/octet-stream"
        response = FileResponse(local.open("rb"), content_type=content_type)
        response["Content-Security-Policy"] = "default-src 'none'"
        return response


class DatasetJobDetailApi(ProjectScopedApi):
    required_action = "dataset.view"

    @extend_schema(responses=JobOutput)
    def get(self, request, project_id, job_id):
        return Response(JobOutput(selectors.job_get(project=self.project, job_id=job_id)).data)


class DatasetJobListApi(ProjectScopedApi):
    required_action = "dataset.view"

    @extend_schema(responses=JobOutput(many=True))
    def get(self, request, project_id):
        from datasets.models import DatasetJob

        jobs = DatasetJob.objects.filter(project=self.project).select_related("version")
        return self.paginate(request, jobs, JobOutput)


class StepsField(serializers.ListField):
    child = serializers.DictField()


class RecipeListCreateApi(ProjectScopedApi):
    required_action = {"GET": "dataset.view", "POST": "dataset.write"}
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        description = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
        version_id = serializers.IntegerField(help_text="the dataset version the steps are checked against")
        steps = StepsField(max_length=100)

    @extend_schema(responses=RecipeOutput(many=True), parameters=[OpenApiParameter("name", str)])
    def get(self, request, project_id):
        recipes = selectors.recipe_list(project=self.project)
        if request.query_params.get("name"):
            recipes = recipes.filter(name=request.query_params["name"])
        return self.paginate(request, recipes, RecipeOutput)

    @extend_schema(request=InputSerializer, responses={201: RecipeOutput})
    def post(self, request, project_id):
        data = self.validated(request)
        version = selectors.version_get(
            project=self.project, version_id=data["version_id"], with_profile=False
        )
        recipe = services.recipe_save(
            user=request.user,
            project=self.project,
            name=data["name"],
            description=data["description"],
            steps=data["steps"],
            version=version,
            ip=self.ip,
        )
        return Response(RecipeOutput(recipe).data, status=201)


class RecipeDetailApi(ProjectScopedApi):
    required_action = {"GET": "dataset.view", "PUT": "dataset.write", "DELETE": "dataset.write"}
    parser_classes = [JSONParser]

    InputSerializer = RecipeListCreateApi.InputSerializer

    @extend_schema(responses=RecipeOutput)
    def get(self, request, project_id, recipe_id):
        return Response(RecipeOutput(selectors.recipe_get(project=self.project, recipe_id=recipe_id)).data)

    @extend_schema(request=InputSerializer, responses=RecipeOutput)
    def put(self, request, project_id, recipe_id):
        data = self.validated(request)
        recipe = selectors.recipe_get(project=self.project, recipe_id=recipe_id)
        version = selectors.version_get(
            project=self.project, version_id=data["version_id"], with_profile=False
        )
        recipe = services.recipe_save(
            user=request.user,
            project=self.project,
            name=data["name"],
            description=data["description"],
            steps=data["steps"],
            version=version,
            recipe=recipe,
            ip=self.ip,
        )
        return Response(RecipeOutput(recipe).data)

    @extend_schema(responses={204: None})
    def delete(self, request, project_id, recipe_id):
        recipe = selectors.recipe_get(project=self.project, recipe_id=recipe_id)
        services.recipe_delete(user=request.user, recipe=recipe, ip=self.ip)
        return Response(status=204)


class RecipePreviewApi(ProjectScopedApi):
    required_action = "dataset.view"
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer):
        version_id = serializers.IntegerField()
        steps = StepsField(max_length=100)
        upto = serializers.IntegerField(min_value=0, required=False, allow_null=True, default=None)
        limit = serializers.IntegerField(min_value=1, max_value=200, default=20)

    @extend_schema(request=InputSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request, project_id):
        data = self.validated(request)
        version = selectors.version_get(
            project=self.project, version_id=data["version_id"], with_profile=False
        )
        return Response(
            selectors.recipe_preview(
                project=self.project,
                version=version,
                steps=data["steps"],
                upto=data["upto"],
                limit=data["limit"],
            )
        )


class RecipeApplyApi(ProjectScopedApi):
    required_action = "dataset.write"
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer):
        version_id = serializers.IntegerField()
        recipe_id = serializers.IntegerField(required=False, allow_null=True, default=None)
        steps = StepsField(max_length=100, required=False, allow_null=True, default=None)
        dataset_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={202: JobOutput})
    def post(self, request, project_id):
        data = self.validated(request)
        version = selectors.version_get(
            project=self.project, version_id=data["version_id"], with_profile=False
        )
        recipe = (
            selectors.recipe_get(project=self.project, recipe_id=data["recipe_id"])
            if data["recipe_id"]
            else None
        )
        job = services.recipe_apply_start(
            user=request.user,
            project=self.project,
            version=version,
            steps=data["steps"],
            recipe=recipe,
            dataset_name=data["dataset_name"] or None,
            ip=self.ip,
        )
        return Response(JobOutput(job).data, status=202)
