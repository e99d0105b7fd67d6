from django.contrib import admin

from training.models import Artifact, Experiment, LatestMetric, Run, RunInsight


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "created_by", "created_at"]
    search_fields = ["name", "project__name"]
    raw_id_fields = ["project", "created_by"]


class LatestMetricInline(admin.TabularInline):
    model = LatestMetric
    extra = 0
    can_delete = False
    readonly_fields = ["key", "value", "step", "timestamp_ms", "min_step", "point_count"]

    def has_add_permission(self, request, obj=None):
        return False


class RunInsightInline(admin.TabularInline):
    model = RunInsight
    extra = 0
    can_delete = False
    readonly_fields = ["rule", "severity", "message", "step", "created_at"]

    def has_add_permission(self, request, obj=None):
        return False


class ArtifactInline(admin.TabularInline):
    model = Artifact
    extra = 0
    can_delete = False
    readonly_fields = ["path", "size_bytes", "sha256", "storage_name", "created_at"]
    exclude = ["created_by"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    """Read-mostly: metrics, params and artifacts change through the services (the API), never here."""

    list_display = ["name", "experiment", "project", "status", "source", "started_at", "ended_at"]
    list_filter = ["status", "source"]
    search_fields = ["name", "experiment__name", "project__name"]
    raw_id_fields = ["project", "experiment", "dataset_version", "parent", "created_by"]
    readonly_fields = ["params", "tags"]
    inlines = [LatestMetricInline, RunInsightInline, ArtifactInline]
