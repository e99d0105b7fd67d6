from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "studio.core"
    label = "core"
    # The OpenAPI auth extension (studio.core.schema) registers itself when DRF first loads
    # DEFAULT_SCHEMA_CLASS from that module, i.e. only where a schema is generated. Importing it here
    # cost every process (each training job's child too) half a second of drf-spectacular imports.
