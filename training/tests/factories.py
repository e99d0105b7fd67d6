"""Experiments and runs for tests; metrics and params go through the services, as in production."""

import factory
from django.utils import timezone

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
