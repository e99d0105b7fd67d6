from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ServerState(models.TextChoices):
    STARTING = "starting", "Starting"
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"


LIVE_STATES = (ServerState.STARTING, ServerState.RUNNING)


class NotebookServer(models.Model):
    """A JupyterLab server: a member's own one per project, or the project's shared one.

    The server's token is never stored: it is derived from SECRET_KEY and `token_salt` (notebooks.
    services.server_token), so every web process can reach the server and a database dump cannot.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="notebook_servers")
    # For a shared server, the member who started it (its kernels run with that member's SDK token).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notebook_servers"
    )
    is_shared = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=ServerState.choices, default=ServerState.STOPPED)
    message = models.CharField(max_length=500, blank=True)
    host = models.CharField(max_length=255, default="127.0.0.1")
    port = models.PositiveIntegerField(null=True, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    # The process's start time guards against a recycled pid being taken for the server.
    process_started_at = models.FloatField(null=True, blank=True)
    token_salt = models.CharField(max_length=64, blank=True)
    token_hash = models.CharField(max_length=64, blank=True)
    api_token = models.ForeignKey(
        "accounts.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    last_activity = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-is_shared", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "user"], condition=Q(is_shared=False), name="one_own_server_per_member"
            ),
            models.UniqueConstraint(
                fields=["project"], condition=Q(is_shared=True), name="one_shared_server_per_project"
            ),
        ]

    def __str__(self) -> str:
        owner = "shared" if self.is_shared else self.user_id
        return f"notebook server {self.pk} ({self.project_id}/{owner}, {self.state})"

    @property
    def base_url(self) -> str:
        return f"/notebooks/{self.project_id}/{self.pk}/"

    @property
    def is_live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def upstream_url(self) -> str:
        return f"http://{self.host}:{self.port}{self.base_url}"
