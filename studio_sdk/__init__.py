"""Studio's Python SDK: a thin HTTP client for the REST API (needs only `requests`).

from studio_sdk import Client
client = Client()  # STUDIO_URL and STUDIO_TOKEN from the environment
project = client.projects.create("Churn model")
version = client.use_project(project).datasets.upload("sales.csv", name="sales")
with client.runs.start(experiment="churn", params={"lr": 0.01}) as run:
    run.log_metric("loss", 0.42, step=1)
"""

from studio_sdk._version import __version__
from studio_sdk.client import Client
from studio_sdk.datasets import Dataset, DatasetJob, DatasetVersion, JobFailedError, JobTimeoutError
from studio_sdk.exceptions import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
    StudioConnectionError,
    StudioError,
    ValidationError,
)
from studio_sdk.hpo import Study, StudyFailedError
from studio_sdk.projects import Project
from studio_sdk.recipes import Recipe
from studio_sdk.runs import MetricsNotSentError, Run, start_run
from studio_sdk.training import TrainingJob, TrainingJobFailedError

__all__ = [
    "AuthenticationError",
    "Client",
    "ConfigurationError",
    "ConflictError",
    "Dataset",
    "DatasetJob",
    "DatasetVersion",
    "JobFailedError",
    "JobTimeoutError",
    "MetricsNotSentError",
    "NotFoundError",
    "PermissionDeniedError",
    "Project",
    "Recipe",
    "Run",
    "ServerError",
    "StudioConnectionError",
    "StudioError",
    "Study",
    "StudyFailedError",
    "TrainingJob",
    "TrainingJobFailedError",
    "ValidationError",
    "__version__",
    "start_run",
]
