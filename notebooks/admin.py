from django.contrib import admin

from notebooks.models import NotebookServer


@admin.register(NotebookServer)
class NotebookServerAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "user", "is_shared", "state", "port", "started_at", "last_activity")
    list_filter = ("state", "is_shared")
    # The token salt derives the server's token: never shown, never edited here.
    exclude = ("token_salt", "token_hash")
    readonly_fields = ("state", "message", "host", "port", "pid", "process_started_at", "api_token")
