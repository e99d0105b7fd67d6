import factory

from notebooks.models import NotebookServer, ServerState
from studio.core.testing import MembershipFactory


class NotebookServerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NotebookServer

    user = factory.LazyAttribute(lambda server: MembershipFactory(project=server.project).user)
    project = factory.SubFactory("studio.core.testing.ProjectFactory")
    is_shared = False
    state = ServerState.STOPPED
