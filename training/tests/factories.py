"""Experiments and runs for tests; metrics and params go through the services, as in production."""

import factory
from django.utils import timezone

from datasets.models import DatasetVersion
from datasets.tests.factories import DatasetFactory, make_version
from studio.core.testing import ProjectFactory
from training.models import Experiment, Run, RunStatus


class ExperimentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Experiment

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"experiment-{n}")


class RunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Run

    experiment = factory.SubFactory(ExperimentFactory)
    project = factory.SelfAttribute("experiment.project")
    name = factory.Sequence(lambda n: f"run-{n}")
    status = RunStatus.RUNNING
    started_at = factory.LazyFunction(timezone.now)


def make_points_version(*, name: str = "points") -> DatasetVersion:
    """A tiny classification dataset: 12 rows of a numeric `x` and a categorical `label` ("a" or "b")."""
    return make_version(
        dataset=DatasetFactory(name=name),
        table={"x": [float(i) for i in range(12)], "label": ["a", "b"] * 6},
        schema=[
            {"name": "x", "type": "numeric", "arrow_type": "double"},
            {"name": "label", "type": "categorical", "arrow_type": "string"},
        ],
    )
