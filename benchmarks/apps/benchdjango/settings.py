"""Minimal Django project for bench_http.py (see fastapi_bench_app.py for the BENCH_STACK set-ups)."""

import os

SECRET_KEY = "bench-only-not-secret"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "benchdjango.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
USE_TZ = True
DATABASES: dict[str, dict[str, str]] = {}
STACK = os.environ.get("BENCH_STACK", "bare")
LOGGING_CONFIG = None if STACK == "peer" else "logging.config.dictConfig"  # peer: wsgi.py sets it up
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
