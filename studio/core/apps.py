from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "studio.core"
    label = "core"

    def ready(self):
        from studio.core import schema  # noqa: F401  (registers the OpenAPI auth extension)
