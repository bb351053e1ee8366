"""The four-service Lumen demo that ``lumen-otel demo`` runs (shipped in the package).

One request crosses the original Lumen system, each service a real process started by
``opentelemetry-instrument`` on a loopback port:

- ``reports`` (Django, :mod:`lumen_otel.demo.reports`): ``POST /exams`` creates an exam and
  hands the image to Media;
- ``media`` (FastAPI, :mod:`lumen_otel.demo.media`): stores the image, asks Dubin for the
  imaging criteria and sends an ORU^R01 result to the HL7 listener;
- ``dubin`` (FastAPI, :mod:`lumen_otel.demo.dubin`): the criteria lookup standing in for
  the RAG service;
- ``hl7-listener`` (FastAPI, :mod:`lumen_otel.demo.hl7_listener`): logs the message it
  receives (lumen-otel masks the patient fields) and writes an audit line.

:mod:`lumen_otel.demo._orchestrator` starts them, sends the request and collects the logs.
The patient is synthetic (:data:`lumen_otel.demo._patient.SYNTHETIC_PATIENT`).
"""

from __future__ import annotations
