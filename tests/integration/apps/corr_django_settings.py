"""Django settings for the middleware tests (in-process) and the chain's first service."""

from __future__ import annotations

SECRET_KEY = "test-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
ROOT_URLCONF = "corr_django_urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = [
    "lumen_otel.django.CorrelationIdMiddleware",
    "corr_django_urls.DenyMiddleware",
]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
LOGGING_CONFIG = None  # leave logging to the tests / lumen-otel
