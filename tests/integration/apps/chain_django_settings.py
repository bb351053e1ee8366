"""Settings of the Django hop of the correlation chain (``django-admin runserver``)."""

from __future__ import annotations

SECRET_KEY = "test-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "chain_django_urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["lumen_otel.django.CorrelationIdMiddleware"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
