# syntax=docker/dockerfile:1
# The lumen-otelcol image: built from collector-config/builder.yaml with the OpenTelemetry
# Collector Builder, the same way scripts/build-collector.sh (`make collector`) builds
# bin/lumen-otelcol. Build context: the repository root.
#
#   docker build -f deploy/compose/collector.Dockerfile -t lumen-otelcol:local .
# collector-config/_build/go.mod asks for go 1.26 (the builder writes it from the modules it resolves).
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
# Must match the core release pinned in collector-config/builder.yaml (BUILDER_VERSION in
# scripts/build-collector.sh).
ARG BUILDER_VERSION=v0.161.0
RUN go install go.opentelemetry.io/collector/cmd/builder@${BUILDER_VERSION}
WORKDIR /src/collector-config
COPY collector-config/builder.yaml builder.yaml
# our own components (the lumen_search exporter), referenced by path from builder.yaml
COPY collector-config/components components
# builder.yaml writes its Go sources to ./_build; compile them static for distroless.
RUN builder --config=builder.yaml --skip-compilation
WORKDIR /src/collector-config/_build
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/lumen-otelcol . \
    && /out/lumen-otelcol --version

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/lumen-otelcol /usr/local/bin/lumen-otelcol
COPY collector-config/gateway.yaml /etc/lumen-otelcol/gateway.yaml
USER 65532:65532
# OTLP gRPC, OTLP HTTP, health_check, the collector's own metrics
EXPOSE 4317 4318 13133 8888
ENTRYPOINT ["/usr/local/bin/lumen-otelcol"]
CMD ["--config=/etc/lumen-otelcol/gateway.yaml"]
