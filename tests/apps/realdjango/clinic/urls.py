"""URL configuration for the clinic project."""

from __future__ import annotations

from django.urls import path
from patients import views

urlpatterns = [
    path("health", views.health),
    path("patients/visit/<str:marker>", views.visit),
    path("patients/crash/<str:marker>", views.crash),
]
