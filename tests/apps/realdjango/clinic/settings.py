"""Django settings for the clinic project, as ``django-admin startproject`` lays them out.

A third-party project run under ``opentelemetry-instrument`` without a line of lumen-otel in it:
its own ``LOGGING`` sends records to a console handler of its own, an audit file on a logger
that does not propagate, a database handler and ``mail_admins``. The paths of what it writes
come from the environment (``CLINIC_AUDIT_LOG``, ``CLINIC_LOG_DB``, ``CLINIC_MAIL_DIR``), so a
run writes nothing into the source tree.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "django-insecure-test-only-not-a-secret-clinic"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = ["patients"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "clinic.urls"
WSGI_APPLICATION = "clinic.wsgi.application"

# no models: the dummy backend keeps runserver's migration check from creating db.sqlite3 here
DATABASES: dict[str, dict[str, Any]] = {}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

ADMINS = [("Clinic Ops", "ops@clinic.example")]
SERVER_EMAIL = "django@clinic.example"
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = os.environ["CLINIC_MAIL_DIR"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
        "patients": {"format": "patients-console {levelname} {name}: {message}", "style": "{"},
        "audit": {"format": "{asctime} AUDIT {levelname} {message}", "style": "{"},
        "row": {"format": "{levelname}|{name}|{message}", "style": "{"},
    },
    "filters": {"require_debug_false": {"()": "django.utils.log.RequireDebugFalse"}},
    "handlers": {
        "django.server": {"class": "logging.StreamHandler", "formatter": "django.server"},
        "patients_console": {"class": "logging.StreamHandler", "formatter": "patients"},
        "audit_file": {
            "class": "logging.FileHandler",
            "filename": os.environ["CLINIC_AUDIT_LOG"],
            "formatter": "audit",
        },
        "database": {
            "class": "patients.logdb.SQLiteHandler",
            "path": os.environ["CLINIC_LOG_DB"],
            "formatter": "row",
        },
        "mail_admins": {
            "level": "ERROR",
            "filters": ["require_debug_false"],
            "class": "django.utils.log.AdminEmailHandler",
        },
    },
    "loggers": {
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
        # configuring "django" resets its children: keep runserver's access lines as Django has them
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        "patients": {"handlers": ["patients_console", "database"], "level": "INFO"},
        "audit": {"handlers": ["audit_file"], "level": "INFO", "propagate": False},
    },
}
