"""Django settings of the demo's Reports service (``DJANGO_SETTINGS_MODULE``)."""

from __future__ import annotations

import secrets

SECRET_KEY = secrets.token_urlsafe(32)  # a throw-away demo process: nothing is signed to keep
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
ROOT_URLCONF = "lumen_otel.demo.reports"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["lumen_otel.django.CorrelationIdMiddleware"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
# lumen-otel owns logging: keep Django from adding its own console handlers on top.
LOGGING_CONFIG = None
