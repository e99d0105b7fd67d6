"""Studio settings: everything a deployment may change comes from the environment (see .env.example)."""

from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
INSECURE_SECRET_KEY = "django-insecure-studio-development-key-do-not-use-in-production"  # noqa: S105 (refused when DEBUG is off)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

STUDIO_DATA_DIR = Path(env.str("STUDIO_DATA_DIR", default=str(BASE_DIR / "var"))).resolve()

DEBUG = env.bool("DEBUG", default=False)
# SECRET_KEY from the environment; else the per-install key `make run` writes under the data dir.
_secret_key_file = STUDIO_DATA_DIR / "secret_key"
SECRET_KEY = env.str("SECRET_KEY", default="") or (
    _secret_key_file.read_text().strip() if _secret_key_file.is_file() else INSECURE_SECRET_KEY
)
if not DEBUG and SECRET_KEY == INSECURE_SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is the built-in development key while DEBUG is off. Set SECRET_KEY "
        "(`make run` generates one per install under STUDIO_DATA_DIR)."
    )

ALLOWED_HOSTS = env.list("STUDIO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("STUDIO_CSRF_TRUSTED_ORIGINS", default=[])
STUDIO_SIGNUP_ENABLED = env.bool("STUDIO_SIGNUP_ENABLED", default=False)
# Secure (HTTPS-only) cookies and HSTS; turn on whenever Studio is served over HTTPS.
STUDIO_SECURE_COOKIES = env.bool("STUDIO_SECURE_COOKIES", default=False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_celery_beat",
    "csp",
    "studio.core",
    "studio.accounts",
    "studio.projects",
    "studio.audit",
    "datasets",
    "training",
    "notebooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "studio.urls"
ASGI_APPLICATION = "studio.asgi.application"
WSGI_APPLICATION = "studio.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "studio.core.context_processors.studio",
            ],
        },
    },
]

# Database: SQLite (WAL) under the data dir by default, DATABASE_URL (PostgreSQL) in CI and production.
_sqlite_path = STUDIO_DATA_DIR / "studio.sqlite3"
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{_sqlite_path}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the worker and beat read while web writes; IMMEDIATE avoids "database is locked"
        # on lock upgrades inside transactions.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not memory, so that the live server and worker processes of the tests share it.
    DATABASES["default"]["TEST"] = {"NAME": str(STUDIO_DATA_DIR / "test.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6390/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "studio",
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": "studio:channels"},
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STUDIO_STATIC_ROOT", default=str(BASE_DIR / "var" / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "frontend" / "static"]
STORAGES = {
    # Local artifact store by default; any Django storage (e.g. storages.backends.s3.S3Storage) by setting.
    "artifacts": {
        "BACKEND": env.str("STUDIO_ARTIFACT_STORAGE", default="studio.storage.ArtifactFileSystemStorage"),
        "OPTIONS": env.json("STUDIO_ARTIFACT_STORAGE_OPTIONS", default={}),
    },
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = STUDIO_DATA_DIR / "media"

# Sessions and cookies: secure flags whenever served over HTTPS (production).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = STUDIO_SECURE_COOKIES
CSRF_COOKIE_SECURE = STUDIO_SECURE_COOKIES
SESSION_COOKIE_AGE = env.int("STUDIO_SESSION_AGE_S", default=14 * 24 * 3600)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "SAMEORIGIN"
if STUDIO_SECURE_COOKIES:
    SECURE_HSTS_SECONDS = env.int("STUDIO_HSTS_SECONDS", default=3600)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Enforced Content-Security-Policy: no inline scripts, no third-party origins.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-src": [SELF],
        "frame-ancestors": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
    }
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "studio.accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["studio.core.permissions.DeclaredActionPermission"],
    "DEFAULT_PAGINATION_CLASS": "studio.core.pagination.StudioPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "studio.core.schema.StudioAutoSchema",
    "EXCEPTION_HANDLER": "studio.core.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # `?format=` belongs to our endpoints (e.g. downloads), not to DRF's renderer switch.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Studio API",
    "DESCRIPTION": ("The REST API of Studio. Authenticate with `Authorization: Bearer <token>`."),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Celery: Redis broker and results, JSON only, the DB scheduler for beat.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The longest job must finish before Redis redelivers it; jobs also carry their own time limits.
STUDIO_LONGEST_JOB_S = env.int("STUDIO_LONGEST_JOB_S", default=24 * 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": STUDIO_LONGEST_JOB_S + 3600}
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
STUDIO_TORCH_THREADS_PER_WORKER = env.int("STUDIO_TORCH_THREADS_PER_WORKER", default=1)

STUDIO_ADMIN_USERNAME = env.str("STUDIO_ADMIN_USERNAME", default="admin")
STUDIO_ADMIN_EMAIL = env.str("STUDIO_ADMIN_EMAIL", default="admin@localhost")
STUDIO_HEALTH_PING_TIMEOUT_S = env.float("STUDIO_HEALTH_PING_TIMEOUT_S", default=1.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("STUDIO_LOG_LEVEL", default="INFO")},
    # httpx logs every request at INFO: the notebook proxy's readiness and idle probes would flood the log.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "httpx": {"level": "WARNING"}},
}

# Datasets
STUDIO_MAX_UPLOAD_BYTES = env.int("STUDIO_MAX_UPLOAD_BYTES", default=20 * 1024**3)
STUDIO_URL_IMPORT_TIMEOUT_S = env.float("STUDIO_URL_IMPORT_TIMEOUT_S", default=600)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Training
# A running job whose worker has not beaten its heartbeat for this long is lost and queued again.
STUDIO_JOB_HEARTBEAT_TIMEOUT_S = env.float("STUDIO_JOB_HEARTBEAT_TIMEOUT_S", default=30)
# Celery queues a training job may be sent to: `default` (CPU workers), `gpu` (GPU workers), and any
# pool of your own (e.g. `gpu-a100`) that workers consume with `-Q`.
STUDIO_TRAINING_QUEUES = env.list("STUDIO_TRAINING_QUEUES", default=["default", "gpu"])
# The studio's API as the processes it starts (script jobs, notebook kernels) reach it: studio_sdk in
# them talks to this URL. `make run` serves on 127.0.0.1:$STUDIO_PORT.
STUDIO_API_URL = env.str("STUDIO_API_URL", default=f"http://127.0.0.1:{env.int('STUDIO_PORT', default=8000)}")
# The largest script or notebook a script job accepts (within the 2.5 MB request body Django reads).
STUDIO_MAX_SCRIPT_BYTES = env.int("STUDIO_MAX_SCRIPT_BYTES", default=2 * 1024 * 1024)

# Notebooks (docs/architecture.md, Notebooks; docs/operations.md, Notebook spawners)
STUDIO_NOTEBOOK_SPAWNER = env.str("STUDIO_NOTEBOOK_SPAWNER", default="notebooks.spawners.LocalProcessSpawner")
STUDIO_NOTEBOOK_DIR = Path(
    env.str("STUDIO_NOTEBOOK_DIR", default=str(STUDIO_DATA_DIR / "notebooks"))
).resolve()
STUDIO_NOTEBOOK_IDLE_TIMEOUT_S = env.int("STUDIO_NOTEBOOK_IDLE_TIMEOUT_S", default=3600)
STUDIO_NOTEBOOK_KERNEL_IDLE_TIMEOUT_S = env.int("STUDIO_NOTEBOOK_KERNEL_IDLE_TIMEOUT_S", default=1800)
STUDIO_NOTEBOOK_START_TIMEOUT_S = env.int("STUDIO_NOTEBOOK_START_TIMEOUT_S", default=60)
STUDIO_NOTEBOOK_TOKEN_LIFETIME_S = env.int("STUDIO_NOTEBOOK_TOKEN_LIFETIME_S", default=12 * 3600)
STUDIO_NOTEBOOK_STUDIO_URL = env.str("STUDIO_NOTEBOOK_STUDIO_URL", default="")
