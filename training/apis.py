"""The experiment tracking API: experiments, runs, params, tags, metric batches and histories, artifacts."""

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.parsers import BaseParser, DataAndFiles, JSONParser
from rest_framework.response import Response

from studio.core.api import ProjectScopedApi
from studio.errors import ApplicationError
from training import jobs, selectors, tracking
from training.job_models import JobStatus
from training.models import RunSource, RunStatus

MAX_METRICS_BODY_BYTES = 32 * 1024 * 1024  # 10k points with the longest keys fit easily

_NUMBER_SCHEMA = {
    "oneOf": [{"type": "number"}, {"type": "string", "enum": ["Infinity", "-Infinity", "NaN"]}],
    "nullable": True,
    "description": "a number; null for NaN; 'Infinity' / '-Infinity' for infinities",
}


@extend_schema_field(_NUMBER_SCHEMA)
class MetricNumberField(serializers.Field):
    """A stored metric value as JSON can carry it (strict JSON has no NaN or Infinity)."""

    def to_representation(self, value):
        return tracking.json_number(value)


@extend_schema_field({"type": "object", "additionalProperties": _NUMBER_SCHEMA})
class MetricValuesField(serializers.Field):
    def to_representation(self, value):
        return {key: tracking.json_number(number) for key, number in value.items()}


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
class StringMapField(serializers.JSONField):
    """Params or tags: key → string value."""


@extend_schema_field({"type": "array", "items": {"type": "integer", "format": "int64"}})
class IntegerListField(serializers.Field):
    def to_representation(self, value):
        return value


@extend_schema_field({"type": "array", "items": _NUMBER_SCHEMA})
class NumberListField(serializers.Field):
    def to_representation(self, value):
        return [tracking.json_number(number) for number in value]


# --- outputs -------------------------------------------------------------------------------------


class ExperimentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    run_count = serializers.IntegerField(required=False)
    last_run_at = serializers.DateTimeField(required=False, allow_null=True)
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()


class RunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    experiment_id = serializers.IntegerField()
    experiment = serializers.CharField(source="experiment.name")
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    params = StringMapField()
    tags = StringMapField()
    metrics = MetricValuesField(source="metric_values", help_text="each metric's latest value")
    dataset_version_id = serializers.IntegerField(allow_null=True)
    parent_id = serializers.IntegerField(allow_null=True)
    source = serializers.ChoiceField(choices=RunSource.choices)
    trainer = serializers.CharField()
    device = serializers.CharField()
    worker_host = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    duration_s = serializers.FloatField(allow_null=True)
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()


class LatestMetricOutput(serializers.Serializer):
    key = serializers.CharField()
    value = MetricNumberField()
    step = serializers.IntegerField()
    timestamp = serializers.IntegerField(source="timestamp_ms", help_text="milliseconds since 1970")
    min_step = serializers.IntegerField()
    point_count = serializers.IntegerField()


class DatasetVersionRef(serializers.Serializer):
    id = serializers.IntegerField()
    dataset_id = serializers.IntegerField()
    dataset = serializers.CharField(source="dataset.name")
    number = serializers.IntegerField()


class RunRef(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()


class RunDetailOutput(RunOutput):
    latest_metrics = LatestMetricOutput(many=True)
    dataset_version = DatasetVersionRef(allow_null=True)
    parent = RunRef(allow_null=True)


class ArtifactOutput(serializers.Serializer):
    path = serializers.CharField()
    size_bytes = serializers.IntegerField()
    sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()


class MetricHistoryOutput(serializers.Serializer):
    key = serializers.CharField()
    total_points = serializers.IntegerField()
    downsampled = serializers.BooleanField(help_text="min and max of each bucket of steps when true")
    bucket_steps = serializers.IntegerField(required=False, help_text="steps per bucket when downsampled")
    steps = IntegerListField()
    values = NumberListField()
    timestamps = IntegerListField()


class CompareRowOutput(serializers.Serializer):
    key = serializers.CharField()
    values = serializers.DictField(child=serializers.CharField(allow_null=True), help_text="run id → value")
    differs = serializers.BooleanField()


class CompareMetricRowOutput(CompareRowOutput):
    values = serializers.DictField(child=MetricNumberField(), help_text="run id → latest value")


class CompareOutput(serializers.Serializer):
    runs = RunRef(many=True)
    params = CompareRowOutput(many=True)
    metrics = CompareMetricRowOutput(many=True)
    tags = CompareRowOutput(many=True)


# --- experiments ---------------------------------------------------------------------------------


class ExperimentListCreateApi(ProjectScopedApi):
    required_action = {"GET": "training.view", "POST": "training.run"}
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        description = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")

    @extend_schema(responses=ExperimentOutput(many=True), parameters=[OpenApiParameter("name", str)])
    def get(self, request, project_id):
        experiments = selectors.experiment_list(project=self.project)
        if request.query_params.get("name"):
            experiments = experiments.filter(name=request.query_params["name"])
        return self.paginate(request, experiments, ExperimentOutput)

    @extend_schema(request=InputSerializer, responses={201: ExperimentOutput})
    def post(self, request, project_id):
        data = self.validated(request)
        experiment = tracking.experiment_create(user=request.user, project=self.project, ip=self.ip, **data)
        experiment = selectors.experiment_get(project=self.project, experiment_id=experiment.pk)
        return Response(ExperimentOutput(experiment).data, status=201)


class ExperimentDetailApi(ProjectScopedApi):
    required_action = "training.view"

    @extend_schema(responses=ExperimentOutput)
    def get(self, request, project_id, experiment_id):
        experiment = selectors.experiment_get(project=self.project, experiment_id=experiment_id)
        return Response(ExperimentOutput(experiment).data)


# --- runs ----------------------------------------------------------------------------------------


class RunListQuery(serializers.Serializer):
    filter = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=4000,
        help_text="e.g. metrics.val_accuracy > 0.9 and params.lr = '0.01' and tags.team = 'a'",
    )
    order_by = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=1000,
        help_text="e.g. metrics.val_accuracy desc, created_at",
    )
    experiment = serializers.CharField(required=False, allow_blank=True, help_text="experiment id or name")


class RunListCreateApi(ProjectScopedApi):
    required_action = {"GET": "training.view", "POST": "training.run"}
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer):
        experiment = serializers.CharField(
            max_length=200, required=False, help_text="experiment name; created when it does not exist"
        )
        experiment_id = serializers.IntegerField(required=False)
        name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
        params = StringMapField(required=False, default=dict)
        tags = StringMapField(required=False, default=dict)
        dataset_version = serializers.IntegerField(required=False, allow_null=True, default=None)
        parent = serializers.IntegerField(required=False, allow_null=True, default=None)
        source = serializers.ChoiceField(choices=RunSource.choices, default=RunSource.SDK)
        trainer = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
        device = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
        worker_host = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
        status = serializers.ChoiceField(
            choices=RunStatus.choices, default=RunStatus.RUNNING, help_text="queued or running"
        )

        def validate(self, attrs):
            if not attrs.get("experiment") and attrs.get("experiment_id") is None:
                raise serializers.ValidationError(
                    {"experiment": "name the experiment (or give experiment_id)."}
                )
            return attrs

    @extend_schema(parameters=[RunListQuery], responses=RunOutput(many=True))
    def get(self, request, project_id):
        query = self.validated(request, RunListQuery, data=request.query_params)
        experiment = None
        if query.get("experiment"):
            experiment = selectors.experiment_by_reference(
                project=self.project, reference=query["experiment"]
            )
        ids = selectors.run_list(
            project=self.project,
            filter=query.get("filter", ""),
            order_by=query.get("order_by", ""),
            experiment=experiment,
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(ids, request, view=self)
        runs = selectors.runs_by_ids(project=self.project, ids=list(page))
        return paginator.get_paginated_response(RunOutput(runs, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: RunDetailOutput})
    def post(self, request, project_id):
        data = self.validated(request)
        if data.get("experiment_id") is not None:
            experiment = selectors.experiment_get(project=self.project, experiment_id=data["experiment_id"])
        else:
            experiment = data["experiment"]  # made with the run when it does not exist yet
        dataset_version = None
        if data["dataset_version"] is not None:
            from datasets.selectors import version_get

            dataset_version = version_get(
                project=self.project, version_id=data["dataset_version"], with_profile=False
            )
        parent = None
        if data["parent"] is not None:
            parent = selectors.run_get(project=self.project, run_id=data["parent"])
        run = tracking.run_create(
            user=request.user,
            project=self.project,
            experiment=experiment,
            name=data["name"],
            params=data["params"],
            tags=data["tags"],
            dataset_version=dataset_version,
            parent=parent,
            source=data["source"],
            trainer=data["trainer"],
            device=data["device"],
            worker_host=data["worker_host"],
            status=data["status"],
            ip=self.ip,
        )
        return Response(_run_detail(self.project, run.pk), status=201)


def _run_detail(project, run_id: int) -> dict:
    return RunDetailOutput(selectors.run_detail(project=project, run_id=run_id)).data


def _run_ids(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ApplicationError(
            "ids: a comma-separated list of run ids, e.g. ?ids=3,4,5.", extra={"field": "ids"}
        ) from None


class RunCompareApi(ProjectScopedApi):
    required_action = "training.view"

    @extend_schema(
        parameters=[OpenApiParameter("ids", str, required=True, description="run ids, comma-separated")],
        responses=CompareOutput,
    )
    def get(self, request, project_id):
        comparison = selectors.runs_compare(
            project=self.project, run_ids=_run_ids(request.query_params.get("ids", ""))
        )
        return Response(CompareOutput(comparison).data)


class RunDetailApi(ProjectScopedApi):
    required_action = {"GET": "training.view", "PATCH": "training.run", "DELETE": "training.run"}
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False)
        tags = serializers.DictField(
            child=serializers.CharField(allow_null=True, allow_blank=True, max_length=5000),
            required=False,
            help_text="merged into the run's tags; null removes a tag",
        )
        status = serializers.ChoiceField(choices=RunStatus.choices, required=False)
        device = serializers.CharField(max_length=100, required=False, allow_blank=True)
        worker_host = serializers.CharField(max_length=255, required=False, allow_blank=True)

    @extend_schema(responses=RunDetailOutput)
    def get(self, request, project_id, run_id):
        return Response(_run_detail(self.project, run_id))

    @extend_schema(request=InputSerializer, responses=RunDetailOutput)
    def patch(self, request, project_id, run_id):
        data = self.validated(request)
        run = selectors.run_get(project=self.project, run_id=run_id)
        tracking.run_update(user=request.user, run=run, ip=self.ip, **data)
        return Response(_run_detail(self.project, run_id))

    @extend_schema(responses={204: None})
    def delete(self, request, project_id, run_id):
        run = selectors.run_get(project=self.project, run_id=run_id)
        tracking.run_delete(user=request.user, run=run, ip=self.ip)
        return Response(status=204)


class RunParamsApi(ProjectScopedApi):
    required_action = "training.run"
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer):
        params = StringMapField(help_text="key → value; values are stored as strings and never change")

    class OutputSerializer(serializers.Serializer):
        params = StringMapField()

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request, project_id, run_id):
        data = self.validated(request)
        run = selectors.run_get(project=self.project, run_id=run_id)
        params = tracking.run_log_params(user=request.user, run=run, params=data["params"])
        return Response({"params": params})


class _MetricsJSONParser(JSONParser):
    """JSON with a size cap: a metric batch is read whole, so a huge body is refused before parsing."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        length = request.META.get("CONTENT_LENGTH") if request is not None else None
        if length and length.isdigit() and int(length) > MAX_METRICS_BODY_BYTES:
            raise ApplicationError(
                f"The batch is over {MAX_METRICS_BODY_BYTES} bytes; send at most "
                f"{tracking.MAX_POINTS_PER_BATCH} points per request.",
                code="too_large",
                status=413,
            )
        return super().parse(stream, media_type, parser_context)


class MetricPointInput(serializers.Serializer):
    key = serializers.CharField(max_length=250)
    value = serializers.FloatField(help_text="a number, or 'NaN', 'Infinity', '-Infinity'")
    step = serializers.IntegerField(required=False, default=0)
    timestamp = serializers.IntegerField(required=False, help_text="milliseconds since 1970; default now")


class RunMetricsApi(ProjectScopedApi):
    required_action = {"GET": "training.view", "POST": "training.run"}
    parser_classes = [_MetricsJSONParser]

    class InputSerializer(serializers.Serializer):
        metrics = MetricPointInput(many=True, max_length=tracking.MAX_POINTS_PER_BATCH)

    class OutputSerializer(serializers.Serializer):
        stored = serializers.IntegerField()

    @extend_schema(
        responses=LatestMetricOutput(many=True), description="Each metric's latest value and extent."
    )
    def get(self, request, project_id, run_id):
        run = selectors.run_get(project=self.project, run_id=run_id)
        return self.paginate(request, selectors.run_metric_keys(run=run), LatestMetricOutput)

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer},
        description="Store a batch of up to 10,000 points in one transaction.",
    )
    def post(self, request, project_id, run_id):
        # The documented shape is InputSerializer's; DRF would spend ~1 s on 10k points, so the
        # service checks every point itself and names the first bad one.
        body = request.data
        if not isinstance(body, dict) or "metrics" not in body:
            raise ApplicationError(
                'metrics: send {"metrics": [{"key", "value", "step", "timestamp"}, ...]}.',
                extra={"field": "metrics"},
            )
        run = selectors.run_get(project=self.project, run_id=run_id)
        stored = tracking.run_log_metrics(user=request.user, run=run, metrics=body["metrics"])
        return Response({"stored": stored}, status=201)


class MetricHistoryQuery(serializers.Serializer):
    max_points = serializers.IntegerField(
        min_value=selectors.MIN_HISTORY_POINTS, max_value=selectors.MAX_HISTORY_POINTS, default=1000
    )


class RunMetricHistoryApi(ProjectScopedApi):
    required_action = "training.view"

    @extend_schema(parameters=[MetricHistoryQuery], responses=MetricHistoryOutput)
    def get(self, request, project_id, run_id, key):
        query = self.validated(request, MetricHistoryQuery, data=request.query_params)
        run = selectors.run_get(project=self.project, run_id=run_id)
        history = selectors.metric_history(run=run, key=key, max_points=query["max_points"])
        return Response(MetricHistoryOutput(history).data)


class _UnreadBody(BaseParser):
    """Accept any body and read none of it: the artifact upload streams the body to disk itself."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return DataAndFiles({}, {})


class RunArtifactsApi(ProjectScopedApi):
    required_action = {"GET": "training.view", "POST": "training.run"}
    parser_classes = [_UnreadBody]

    @extend_schema(responses=ArtifactOutput(many=True))
    def get(self, request, project_id, run_id):
        run = selectors.run_get(project=self.project, run_id=run_id)
        return self.paginate(request, selectors.artifact_list(run=run), ArtifactOutput)

    @extend_schema(
        parameters=[
            OpenApiParameter("path", str, required=True, description="e.g. model/weights.safetensors")
        ],
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={201: ArtifactOutput},
    )
    def post(self, request, project_id, run_id):
        run = selectors.run_get(project=self.project, run_id=run_id)
        length = request.META.get("CONTENT_LENGTH")
        artifact = tracking.artifact_upload(
            user=request.user,
            run=run,
            path=request.query_params.get("path", ""),
            stream=request._request,
            expected_bytes=int(length) if length and length.isdigit() else None,
            ip=self.ip,
        )
        return Response(ArtifactOutput(artifact).data, status=201)


class RunArtifactDownloadApi(ProjectScopedApi):
    required_action = "training.view"

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, project_id, run_id, path):
        from datasets import downloads, files

        run = selectors.run_get(project=self.project, run_id=run_id)
        artifact = selectors.artifact_get(run=run, path=tracking.clean_artifact_path(path))
        response = StreamingHttpResponse(
            downloads.file_chunks(request._request, files.local_path(artifact.storage_name)),
            content_type="application/octet-stream",
        )
        response["Content-Length"] = str(artifact.size_bytes)
        response["Content-Disposition"] = content_disposition_header(
            as_attachment=True, filename=artifact.path.rsplit("/", 1)[-1]
        )
        response["Content-Security-Policy"] = "default-src 'none'"
        return response


# --- trainers and training jobs ------------------------------------------------------------------


class HyperparameterOutput(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=["int", "float", "str", "bool", "int_list"])
    default = serializers.JSONField(allow_null=True)
    min = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)
    choices = serializers.ListField(child=serializers.JSONField(), allow_null=True)
    optional = serializers.BooleanField()
    help = serializers.CharField()


class TrainerOutput(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    task = serializers.CharField(help_text="classification or regression")
    data_kind = serializers.CharField(help_text="tabular, image or text")
    target_types = serializers.ListField(child=serializers.CharField())
    hyperparameters = HyperparameterOutput(many=True)


class TrainingJobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    run_id = serializers.IntegerField()
    kind = serializers.CharField(
        source="spec.kind", default="trainer", help_text="trainer, script or notebook"
    )
    trainer = serializers.CharField(source="spec.trainer", default="")
    filename = serializers.CharField(
        source="spec.filename", default="", help_text="script mode: the file run"
    )
    dataset_version_id = serializers.IntegerField(
        source="spec.dataset_version_id", allow_null=True, default=None
    )
    target = serializers.CharField(source="spec.target", allow_null=True, default=None)
    hyperparameters = serializers.JSONField(source="spec.hyperparameters", default=dict)
    status = serializers.ChoiceField(choices=JobStatus.choices)
    progress = serializers.FloatField(help_text="0 to 1")
    message = serializers.CharField()
    attempts = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    error = serializers.CharField()
    error_code = serializers.CharField()
    queue = serializers.CharField()
    gpus = serializers.IntegerField()
    time_limit_s = serializers.IntegerField()
    is_stop_requested = serializers.BooleanField()
    worker_host = serializers.CharField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class LogChunkOutput(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()


class RunLogsOutput(serializers.Serializer):
    chunks = LogChunkOutput(many=True)
    next = serializers.IntegerField(help_text="the last chunk's id: pass it as ?after= to read on")


class TrainerListApi(ProjectScopedApi):
    required_action = "training.view"

    @extend_schema(responses=TrainerOutput(many=True), description="The built-in trainers and their forms.")
    def get(self, request, project_id):
        from training.trainers import TRAINERS

        return Response(TrainerOutput([trainer.describe() for trainer in TRAINERS.values()], many=True).data)


class JobOptionsInput(serializers.Serializer):
    """What every kind of training job takes besides its code and data."""

    experiment = serializers.CharField(max_length=200, required=False, default="default")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    gpus = serializers.IntegerField(min_value=0, max_value=64, required=False, default=0)
    processes = serializers.IntegerField(min_value=1, max_value=8, required=False, default=1)
    queue = serializers.CharField(max_length=20, required=False, allow_null=True, default=None)
    time_limit_s = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)


def _job_options(data: dict) -> dict:
    return {
        "experiment": data["experiment"],
        "name": data["name"],
        "gpus": data["gpus"],
        "processes": data["processes"],
        "time_limit_s": data["time_limit_s"],
        "queue": data["queue"] or None,
    }


class TrainingJobListCreateApi(ProjectScopedApi):
    required_action = {"GET": "training.view", "POST": "training.run"}
    parser_classes = [JSONParser]

    class InputSerializer(JobOptionsInput):
        trainer = serializers.CharField(max_length=100)
        dataset_version_id = serializers.IntegerField()
        target = serializers.CharField(max_length=250, required=False, allow_null=True, allow_blank=True)
        hyperparameters = serializers.DictField(required=False, default=dict)

    @extend_schema(responses=TrainingJobOutput(many=True))
    def get(self, request, project_id):
        return self.paginate(request, selectors.training_job_list(project=self.project), TrainingJobOutput)

    @extend_schema(request=InputSerializer, responses={201: TrainingJobOutput})
    def post(self, request, project_id):
        data = self.validated(request)
        version = _dataset_version(self.project, data["dataset_version_id"])
        job = jobs.training_job_submit(
            user=request.user,
            project=self.project,
            trainer=data["trainer"],
            dataset_version=version,
            target=data.get("target") or None,
            hyperparameters=data["hyperparameters"],
            **_job_options(data),
            ip=self.ip,
        )
        job = selectors.training_job_get(project=self.project, job_id=job.pk)
        return Response(TrainingJobOutput(job).data, status=201)


class TrainingScriptJobCreateApi(ProjectScopedApi):
    """Script mode: run your own Python script or notebook as a training job."""

    required_action = "training.run"
    parser_classes = [JSONParser]

    class InputSerializer(JobOptionsInput):
        filename = serializers.CharField(
            max_length=200, required=False, default="", help_text="ends in .py or .ipynb (with `source`)"
        )
        source = serializers.CharField(
            trim_whitespace=False, required=False, default="", help_text="the file's text (UTF-8)"
        )
        workspace_path = serializers.CharField(
            max_length=1000,
            required=False,
            default="",
            help_text="instead of filename + source: a file in your notebook workspace (shared/train.ipynb)",
        )
        dataset_version_id = serializers.IntegerField(required=False, allow_null=True, default=None)
        hyperparameters = serializers.DictField(
            required=False,
            default=dict,
            help_text="passed as --name value arguments and STUDIO_HYPERPARAMETERS",
        )

    @extend_schema(request=InputSerializer, responses={201: TrainingJobOutput})
    def post(self, request, project_id):
        data = self.validated(request)
        version = None
        if data["dataset_version_id"] is not None:
            version = _dataset_version(self.project, data["dataset_version_id"])
        filename, source = data["filename"], data["source"].encode("utf-8")
        if data["workspace_path"]:
            from django.conf import settings

            from notebooks.selectors import workspace_file_read

            filename, source = workspace_file_read(
                user=request.user,
                project=self.project,
                path=data["workspace_path"],
                max_bytes=settings.STUDIO_MAX_SCRIPT_BYTES,
            )
        elif not filename:
            raise ApplicationError(
                "filename: give filename and source, or workspace_path.", extra={"field": "filename"}
            )
        job = jobs.training_script_job_submit(
            user=request.user,
            project=self.project,
            filename=filename,
            source=source,
            dataset_version=version,
            hyperparameters=data["hyperparameters"],
            **_job_options(data),
            ip=self.ip,
        )
        job = selectors.training_job_get(project=self.project, job_id=job.pk)
        return Response(TrainingJobOutput(job).data, status=201)


def _dataset_version(project, version_id: int):
    from datasets.selectors import version_get

    try:
        return version_get(project=project, version_id=version_id, with_profile=False)
    except ApplicationError as error:
        raise ApplicationError(
            f"dataset_version_id: {error.message}", code=error.code, extra={"field": "dataset_version_id"}
        ) from None


class TrainingJobDetailApi(ProjectScopedApi):
    required_action = "training.view"

    @extend_schema(responses=TrainingJobOutput)
    def get(self, request, project_id, job_id):
        job = selectors.training_job_get(project=self.project, job_id=job_id)
        return Response(TrainingJobOutput(job).data)


class TrainingJobStopApi(ProjectScopedApi):
    required_action = "training.run"

    @extend_schema(request=None, responses=TrainingJobOutput, description="Stop a queued or running job.")
    def post(self, request, project_id, job_id):
        job = selectors.training_job_get(project=self.project, job_id=job_id)
        jobs.training_job_stop(user=request.user, job=job, ip=self.ip)
        job = selectors.training_job_get(project=self.project, job_id=job_id)
        return Response(TrainingJobOutput(job).data)


class RunLogsQuery(serializers.Serializer):
    after = serializers.IntegerField(min_value=0, default=0, help_text="read the chunks after this chunk id")


class RunLogsApi(ProjectScopedApi):
    required_action = "training.view"

    @extend_schema(parameters=[RunLogsQuery], responses=RunLogsOutput)
    def get(self, request, project_id, run_id):
        query = self.validated(request, RunLogsQuery, data=request.query_params)
        run = selectors.run_get(project=self.project, run_id=run_id)
        chunks = selectors.run_log_chunks(run=run, after=query["after"])
        return Response(
            {
                "chunks": LogChunkOutput(chunks, many=True).data,
                "next": chunks[-1].pk if chunks else query["after"],
            }
        )


# --- debugger ------------------------------------------------------------------------------------


class RunInsightOutput(serializers.Serializer):
    rule = serializers.CharField()
    severity = serializers.ChoiceField(choices=["info", "warning", "critical"])
    message = serializers.CharField()
    step = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class RunInsightsOutput(serializers.Serializer):
    insights = RunInsightOutput(many=True)


class RunInsightsApi(ProjectScopedApi):
    required_action = "training.view"

    @extend_schema(
        responses=RunInsightsOutput, description="The debugger's insights on the run, most severe first."
    )
    def get(self, request, project_id, run_id):
        run = selectors.run_get(project=self.project, run_id=run_id)
        insights = selectors.run_insight_list(run=run)
        return Response({"insights": RunInsightOutput(insights, many=True).data})


class ConfusionMatrixQuery(serializers.Serializer):
    step = serializers.IntegerField(
        min_value=0, required=False, help_text="the epoch; the latest when left out"
    )


class ConfusionMatrixOutput(serializers.Serializer):
    step = serializers.IntegerField()
    steps = serializers.ListField(child=serializers.IntegerField(), help_text="every epoch with a matrix")
    labels = serializers.ListField(child=serializers.CharField())
    matrix = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="rows: true, columns: predicted",
    )


class RunConfusionMatrixApi(ProjectScopedApi):
    required_action = "training.view"

    @extend_schema(parameters=[ConfusionMatrixQuery], responses=ConfusionMatrixOutput)
    def get(self, request, project_id, run_id):
        query = self.validated(request, ConfusionMatrixQuery, data=request.query_params)
        run = selectors.run_get(project=self.project, run_id=run_id)
        confusion = selectors.confusion_matrix_get(run=run, step=query.get("step"))
        return Response(ConfusionMatrixOutput(confusion).data)


# --- hyperparameter studies ----------------------------------------------------------------------


class SearchDimensionInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    type = serializers.ChoiceField(choices=["float", "int", "categorical"])
    low = serializers.FloatField(required=False, allow_null=True, default=None)
    high = serializers.FloatField(required=False, allow_null=True, default=None)
    log = serializers.BooleanField(required=False, default=False)
    step = serializers.FloatField(required=False, allow_null=True, default=None)
    choices = serializers.ListField(child=serializers.JSONField(), required=False, default=list)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        # JSON integers stay integers (an int range, integer choices): FloatField would make them floats.
        for key in ("low", "high", "step"):
            raw = data.get(key) if isinstance(data, dict) else None
            if isinstance(raw, int) and not isinstance(raw, bool):
                value[key] = raw
        return value


class ScriptInput(serializers.Serializer):
    filename = serializers.CharField(max_length=200, help_text="ends in .py or .ipynb")
    source = serializers.CharField(trim_whitespace=False, help_text="the file's text (UTF-8)")


class StudyTrialOutput(serializers.Serializer):
    number = serializers.IntegerField()
    state = serializers.CharField(help_text="running, complete, pruned or failed")
    params = serializers.JSONField()
    value = MetricNumberField(allow_null=True)
    pruned_at_step = serializers.IntegerField(allow_null=True)
    message = serializers.CharField()
    job_id = serializers.IntegerField(allow_null=True)
    run_id = serializers.IntegerField(source="job.run_id", allow_null=True, default=None)
    job_status = serializers.CharField(source="job.status", allow_null=True, default=None)
    attempts = serializers.IntegerField(source="job.attempts", allow_null=True, default=None)
    duration_s = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class StudyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    objective_metric = serializers.CharField()
    direction = serializers.CharField()
    search_space = serializers.JSONField()
    sampler = serializers.CharField()
    seed = serializers.IntegerField(allow_null=True)
    pruner = serializers.CharField()
    n_trials = serializers.IntegerField(allow_null=True)
    time_limit_s = serializers.IntegerField(allow_null=True)
    parallelism = serializers.IntegerField()
    kind = serializers.CharField(source="template.kind", help_text="trainer or script")
    trainer = serializers.CharField(source="template.trainer", default="")
    filename = serializers.CharField(source="template.filename", default="", help_text="script studies")
    dataset_version_id = serializers.IntegerField(
        source="template.dataset_version_id", allow_null=True, default=None
    )
    target = serializers.CharField(source="template.target", allow_null=True, default=None)
    hyperparameters = serializers.JSONField(source="template.hyperparameters")
    gpus = serializers.IntegerField(source="template.gpus", default=0)
    queue = serializers.CharField(source="template.queue", allow_null=True, default=None)
    status = serializers.CharField(help_text="running, paused, stopped, finished or failed")
    message = serializers.CharField()
    trial_count = serializers.IntegerField(required=False)
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class StudyDetailOutput(StudyOutput):
    trials = StudyTrialOutput(many=True)
    best_trial = StudyTrialOutput(allow_null=True)
    importances = serializers.DictField(
        child=serializers.FloatField(),
        help_text="fANOVA importance per hyperparameter (from 2 complete trials)",
    )
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="trials per state")


def _study_detail(project, study_id: int) -> dict:
    study = selectors.study_get(project=project, study_id=study_id)
    trials = selectors.study_trials(study=study)
    counts = {state: 0 for state in ("running", "complete", "pruned", "failed")}
    for trial in trials:
        counts[trial.state] = counts.get(trial.state, 0) + 1
    data = StudyOutput(study).data
    data["trial_count"] = len(trials)
    data["trials"] = StudyTrialOutput(trials, many=True).data
    best = selectors.study_best_trial(study=study, trials=trials)
    data["best_trial"] = StudyTrialOutput(best).data if best else None
    data["counts"] = counts
    data["importances"] = study.importances
    return data


class StudyListCreateApi(ProjectScopedApi):
    """Hyperparameter studies: each trial is a training job; Optuna samples and prunes."""

    required_action = {"GET": "training.view", "POST": "training.run"}
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        objective_metric = serializers.CharField(max_length=250, help_text="a metric every trial logs")
        direction = serializers.ChoiceField(choices=["minimize", "maximize"])
        search_space = SearchDimensionInput(many=True)
        trainer = serializers.CharField(
            max_length=100, required=False, allow_blank=True, default="", help_text="a built-in trainer, or"
        )
        script = ScriptInput(required=False, allow_null=True, default=None, help_text="…your own script")
        dataset_version_id = serializers.IntegerField(required=False, allow_null=True, default=None)
        target = serializers.CharField(max_length=250, required=False, allow_null=True, allow_blank=True)
        hyperparameters = serializers.DictField(
            required=False, default=dict, help_text="fixed for every trial"
        )
        sampler = serializers.CharField(
            max_length=20, required=False, default="tpe", help_text="random, grid, tpe or cmaes"
        )
        seed = serializers.IntegerField(required=False, allow_null=True, default=None)
        pruner = serializers.CharField(
            max_length=20,
            required=False,
            default="none",
            help_text="none, median, successive_halving or hyperband",
        )
        n_trials = serializers.IntegerField(required=False, allow_null=True, default=None)
        time_limit_s = serializers.IntegerField(required=False, allow_null=True, default=None)
        parallelism = serializers.IntegerField(required=False, default=2)
        gpus = serializers.IntegerField(min_value=0, max_value=64, required=False, default=0)
        queue = serializers.CharField(max_length=20, required=False, allow_null=True, default=None)
        trial_time_limit_s = serializers.IntegerField(
            min_value=1, required=False, allow_null=True, default=None
        )
        enqueue = serializers.ListField(
            child=serializers.DictField(),
            required=False,
            default=list,
            help_text="configurations tried first",
        )

    @extend_schema(responses=StudyOutput(many=True))
    def get(self, request, project_id):
        return self.paginate(request, selectors.study_list(project=self.project), StudyOutput)

    @extend_schema(request=InputSerializer, responses={201: StudyDetailOutput})
    def post(self, request, project_id):
        from training.studies import study_create

        data = self.validated(request)
        version_id = data.pop("dataset_version_id")
        version = _dataset_version(self.project, version_id) if version_id is not None else None
        script = data.pop("script") or {}
        search_space = [
            {key: value for key, value in item.items() if value is not None and value != []}
            for item in data.pop("search_space")
        ]
        for item in search_space:
            if item["type"] == "categorical":
                item.setdefault("choices", [])
        study = study_create(
            user=request.user,
            project=self.project,
            dataset_version=version,
            search_space=search_space,
            script_filename=script.get("filename"),
            script_source=script.get("source"),
            target=data.pop("target") or None,
            ip=self.ip,
            **data,
        )
        return Response(_study_detail(self.project, study.pk), status=201)


class StudyDetailApi(ProjectScopedApi):
    required_action = "training.view"

    @extend_schema(responses=StudyDetailOutput, description="A study with its trials and its best trial.")
    def get(self, request, project_id, study_id):
        return Response(_study_detail(self.project, study_id))


class StudyTrialsApi(ProjectScopedApi):
    required_action = "training.view"

    @extend_schema(responses=StudyTrialOutput(many=True))
    def get(self, request, project_id, study_id):
        study = selectors.study_get(project=self.project, study_id=study_id)
        return Response(StudyTrialOutput(selectors.study_trials(study=study), many=True).data)


class _StudyActionApi(ProjectScopedApi):
    required_action = "training.run"
    action = ""

    @extend_schema(request=None, responses=StudyDetailOutput)
    def post(self, request, project_id, study_id):
        from training import studies

        study = selectors.study_get(project=self.project, study_id=study_id)
        getattr(studies, f"study_{self.action}")(user=request.user, study=study, ip=self.ip)
        return Response(_study_detail(self.project, study_id))


class StudyPauseApi(_StudyActionApi):
    """Ask for no new trials; the running ones finish."""

    action = "pause"


class StudyResumeApi(_StudyActionApi):
    action = "resume"


class StudyStopApi(_StudyActionApi):
    """Stop the study and its running trials."""

    action = "stop"


class StudyExtendApi(ProjectScopedApi):
    required_action = "training.run"
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer):
        n_trials = serializers.IntegerField(min_value=1, max_value=10_000, help_text="trials to add")

    @extend_schema(
        request=InputSerializer, responses=StudyDetailOutput, description="Add trials to the budget."
    )
    def post(self, request, project_id, study_id):
        from training.studies import study_extend

        data = self.validated(request)
        study = selectors.study_get(project=self.project, study_id=study_id)
        study_extend(user=request.user, study=study, n_trials=data["n_trials"], ip=self.ip)
        return Response(_study_detail(self.project, study_id))
