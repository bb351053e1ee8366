# syntax=docker/dockerfile:1
# lumen-otel with every extra: the image the compose "demo" profile runs the four demo
# services from (each service runs the command `lumen-otel demo` starts it with).
# Build context: the repository root.
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY lumen_otel/ lumen_otel/
RUN pip install '.[all]' && rm -rf /src
WORKDIR /app
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin lumen
USER 10001
EXPOSE 8000
