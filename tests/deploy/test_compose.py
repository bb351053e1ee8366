"""deploy/compose/: the local stack's compose file, its mounts and its certificate script."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.deploy.conftest import COMPOSE_DIR, HERE, REPO, load_yaml

COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"


def _compose() -> dict[str, Any]:
    return dict(load_yaml(COMPOSE_FILE))


def _validator() -> jsonschema.Draft201909Validator:
    schema = json.loads((HERE / "compose-spec.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(
        schema, format_checker=jsonschema.Draft201909Validator.FORMAT_CHECKER
    )


def _bind_sources() -> list[tuple[str, Path]]:
    """(service, host path) for every bind mount in compose.yaml (named volumes excluded)."""
    compose = _compose()
    named = set(compose.get("volumes", {}))
    found = []
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if source not in named:
                found.append((name, (COMPOSE_DIR / source).resolve()))
    return found


class TestComposeFile:
    def test_validates_against_the_compose_specification(self) -> None:
        """`docker compose config` would accept the file: it matches the Compose JSON schema."""
        errors = [f"{e.json_path}: {e.message}" for e in _validator().iter_errors(_compose())]
        assert [] == errors

    def test_the_schema_rejects_a_misspelt_key(self) -> None:
        """The schema check is not vacuous: an unknown service key fails it."""
        compose = _compose()
        compose["services"]["collector"]["enviroment"] = {"A": "b"}
        assert not _validator().is_valid(compose)

    def test_runs_the_whole_stack(self) -> None:
        """Collector, Loki, Prometheus and Grafana run by default; the demo services with --profile demo."""
        services = _compose()["services"]
        default = sorted(name for name, s in services.items() if not s.get("profiles"))
        demo = sorted(name for name, s in services.items() if "demo" in s.get("profiles", []))
        assert (
            ["collector", "grafana", "loki", "prometheus"],
            ["dubin", "hl7-listener", "media", "reports"],
        ) == (
            default,
            demo,
        )

    def test_every_mounted_file_exists(self) -> None:
        """Every bind mount points at a file or directory of the repo (certs/ is made by make-certs.sh)."""
        certs = (COMPOSE_DIR / "certs").resolve()
        missing = [
            f"{service}: {path.relative_to(REPO)}"
            for service, path in _bind_sources()
            if not path.exists() and not path.is_relative_to(certs)
        ]
        assert [] == missing

    def test_every_build_names_an_existing_dockerfile(self) -> None:
        builds = {
            name: (COMPOSE_DIR / s["build"]["context"] / s["build"]["dockerfile"]).resolve()
            for name, s in _compose()["services"].items()
            if "build" in s
        }
        assert {name: True for name in builds} == {name: path.is_file() for name, path in builds.items()}

    def test_every_published_port_is_on_loopback(self) -> None:
        """Nothing of the local stack (no auth on Loki or Prometheus) is reachable from the network."""
        published = [
            (name, port)
            for name, service in _compose()["services"].items()
            for port in service.get("ports", [])
        ]
        assert [] == [(name, port) for name, port in published if not str(port).startswith("127.0.0.1:")]

    def test_the_collector_gets_the_gateway_config_and_tls_from_the_environment(self) -> None:
        """The collector mounts collector-config/gateway.yaml and gets the variables its config reads."""
        collector = _compose()["services"]["collector"]
        sources = {path for service, path in _bind_sources() if service == "collector"}
        assert (REPO / "collector-config" / "gateway.yaml") in sources
        assert {
            "LOKI_OTLP_ENDPOINT": "http://loki:3100/otlp",
            "PROMETHEUS_REMOTE_WRITE_ENDPOINT": "http://prometheus:9090/api/v1/write",
            "LUMEN_COLLECTOR_TLS_CERT_FILE": "/etc/lumen-otelcol/tls/collector.crt",
            "LUMEN_COLLECTOR_TLS_KEY_FILE": "/etc/lumen-otelcol/tls/collector.key",
            "LUMEN_COLLECTOR_CLIENT_CA_FILE": "/etc/lumen-otelcol/tls/ca.crt",
        }.items() <= collector["environment"].items()

    def test_the_collector_is_given_every_variable_its_config_needs(self) -> None:
        """Each ${env:NAME} in gateway.yaml without a default is set for the compose collector."""
        from tests.deploy.conftest import COLLECTOR_CONFIG, env_references

        required = {
            n
            for n, has_default in env_references(COLLECTOR_CONFIG / "gateway.yaml").items()
            if not has_default
        }
        assert set() == required - set(_compose()["services"]["collector"]["environment"])

    def test_prometheus_accepts_remote_write_and_loads_the_shared_rules(self) -> None:
        prometheus = _compose()["services"]["prometheus"]
        assert "--web.enable-remote-write-receiver" in prometheus["command"]
        assert "../prometheus/rules:/etc/prometheus/rules:ro" in prometheus["volumes"]

    def test_demo_services_send_over_mutual_tls(self) -> None:
        """Each demo service exports to the collector over https with the local CA and a client cert."""
        services = _compose()["services"]
        expected = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4318",
            "OTEL_EXPORTER_OTLP_CERTIFICATE": "/etc/lumen/tls/ca.crt",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "/etc/lumen/tls/client.crt",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY": "/etc/lumen/tls/client.key",
        }
        actual = {
            name: {key: services[name]["environment"].get(key) for key in expected}
            for name in ("reports", "media", "dubin", "hl7-listener")
        }
        assert dict.fromkeys(actual, expected) == actual


class TestLokiConfig:
    """Loki is not run here (no binary): its config is checked for what the OTLP path needs."""

    def test_keeps_otlp_attributes_as_structured_metadata(self) -> None:
        config = load_yaml(COMPOSE_DIR / "loki-config.yaml")
        schema = config["schema_config"]["configs"][-1]
        assert (True, "tsdb", "v13") == (
            config["limits_config"]["allow_structured_metadata"],
            schema["store"],
            schema["schema"],
        )

    def test_listens_where_the_collector_and_grafana_expect(self) -> None:
        """http://loki:3100 in compose.yaml is the port Loki listens on."""
        config = load_yaml(COMPOSE_DIR / "loki-config.yaml")
        compose = _compose()["services"]
        assert (3100, "http://loki:3100/otlp", "http://loki:3100") == (
            config["server"]["http_listen_port"],
            compose["collector"]["environment"]["LOKI_OTLP_ENDPOINT"],
            compose["grafana"]["environment"]["LOKI_URL"],
        )


class TestDemoProfile:
    """The compose demo runs the same services `lumen-otel demo` runs (lumen_otel/demo/)."""

    def _demo(self) -> dict[str, dict[str, Any]]:
        return {n: s for n, s in _compose()["services"].items() if "demo" in s.get("profiles", [])}

    def test_each_service_has_the_name_and_app_of_the_cli_demo(self) -> None:
        from lumen_otel.demo._orchestrator import SERVICES

        expected = {
            spec.name: (spec.name, spec.target.split(":")[0] if spec.framework == "fastapi" else spec.target)
            for spec in SERVICES
        }
        actual = {}
        for name, service in self._demo().items():
            env = service["environment"]
            target = env.get("DJANGO_SETTINGS_MODULE") or next(a for a in service["command"] if ":app" in a)
            actual[name] = (env["OTEL_SERVICE_NAME"], target.split(":")[0])
        assert expected == actual

    def test_apps_are_importable_from_the_package(self) -> None:
        """The modules the commands name exist in the installed lumen_otel (the image pip-installs it)."""
        import importlib.util

        modules = {a.split(":")[0] for s in self._demo().values() for a in s["command"] if ":app" in a} | {
            s["environment"]["DJANGO_SETTINGS_MODULE"]
            for s in self._demo().values()
            if "DJANGO_SETTINGS_MODULE" in s["environment"]
        }
        assert {m: True for m in modules} == {m: importlib.util.find_spec(m) is not None for m in modules}

    def test_services_find_each_other_by_compose_name(self) -> None:
        """The URL variables the demo apps read point at the compose services."""
        from lumen_otel.demo._orchestrator import SERVICES

        urls = {spec.env_name: f"http://{spec.name}:8000" for spec in SERVICES if spec.env_name}
        given = {k: v for s in self._demo().values() for k, v in s["environment"].items() if k in urls}
        assert urls == given


class TestCertificateScript:
    def test_makes_a_ca_and_certificates_that_verify(self, tmp_path: Path) -> None:
        """make-certs.sh writes a CA, a server certificate (compose and loopback names) and a client one."""
        out = tmp_path / "certs"
        subprocess.run(
            ["bash", str(COMPOSE_DIR / "make-certs.sh")],
            env={"PATH": "/usr/bin:/bin", "CERT_DIR": str(out), "DAYS": "2"},
            check=True,
            capture_output=True,
            timeout=120,
        )
        assert {"ca.crt", "ca.key", "collector.crt", "collector.key", "client.crt", "client.key"} <= {
            p.name for p in out.iterdir()
        }
        text = subprocess.run(
            [
                "openssl",
                "x509",
                "-in",
                str(out / "collector.crt"),
                "-noout",
                "-ext",
                "subjectAltName,extendedKeyUsage",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        expected = ("DNS:collector", "IP Address:127.0.0.1", "TLS Web Server Authentication")
        assert [] == [part for part in expected if part not in text]
        verify = [
            "openssl",
            "verify",
            "-CAfile",
            str(out / "ca.crt"),
            str(out / "collector.crt"),
            str(out / "client.crt"),
        ]
        assert 0 == subprocess.run(verify, capture_output=True, timeout=30, check=False).returncode

    def test_reuses_the_existing_ca(self, tmp_path: Path) -> None:
        """Running the script again keeps the CA, so certificates already handed out stay valid."""
        env = {"PATH": "/usr/bin:/bin", "CERT_DIR": str(tmp_path), "DAYS": "2"}
        script = ["bash", str(COMPOSE_DIR / "make-certs.sh")]
        subprocess.run(script, env=env, check=True, capture_output=True, timeout=120)
        first = (tmp_path / "ca.crt").read_bytes()
        subprocess.run(script, env=env, check=True, capture_output=True, timeout=120)
        assert first == (tmp_path / "ca.crt").read_bytes()

    def test_certificates_are_git_ignored(self) -> None:
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", str(COMPOSE_DIR / "certs" / "ca.key")],
            cwd=REPO,
            timeout=30,
            check=False,
        )
        assert 0 == ignored.returncode


class TestDockerfiles:
    @pytest.mark.parametrize("dockerfile", ["collector.Dockerfile", "app.Dockerfile"])
    def test_copy_only_files_that_exist(self, dockerfile: str) -> None:
        """Every COPY source in the Dockerfiles (context: the repository root) exists."""
        missing = []
        for line in (COMPOSE_DIR / dockerfile).read_text(encoding="utf-8").splitlines():
            words = line.split()
            if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
                missing += [src for src in words[1:-1] if not (REPO / src).exists()]
        assert [] == missing

    @pytest.mark.parametrize("dockerfile", ["collector.Dockerfile", "app.Dockerfile"])
    def test_keys_never_enter_the_build_context(self, dockerfile: str) -> None:
        """The Dockerfile's own .dockerignore keeps certs/, .venv and .git out of the image."""
        ignored = (COMPOSE_DIR / f"{dockerfile}.dockerignore").read_text(encoding="utf-8").split()
        assert {"deploy/compose/certs", ".venv", ".git"} <= set(ignored)

    def test_collector_image_builds_with_the_builder_version_of_make_collector(self) -> None:
        """collector.Dockerfile installs the same builder release as scripts/build-collector.sh."""
        import re

        script = (REPO / "scripts" / "build-collector.sh").read_text(encoding="utf-8")
        dockerfile = (COMPOSE_DIR / "collector.Dockerfile").read_text(encoding="utf-8")
        expected = re.search(r'BUILDER_VERSION="(v[\d.]+)"', script)
        actual = re.search(r"ARG BUILDER_VERSION=(v[\d.]+)", dockerfile)
        assert expected and actual
        assert expected.group(1) == actual.group(1)
