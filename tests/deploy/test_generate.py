"""`juststorage deploy generate <platform>`: each platform's own files, parsed and
checked; secrets referenced, never written; nothing overwritten without --force."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from juststorage.cli.main import cli
from juststorage.config import load_settings
from juststorage.deploy.generate import PLATFORMS

SECRETS = {
    "JWT_SECRET": "jwt-secret-value-never-in-a-file-71c3",
    "API_KEYS": "apikey-value-never-in-a-file-0d9e:*:admin",
    "DATABASE_URL": "postgresql://u:db-password-never-in-a-file@h/db",
}
EXPECTED_FILES = {
    "caprover": {"captain-definition", "caprover-one-click-app.yml"},
    "heroku": {"app.json", "Procfile", ".profile", ".python-version", "requirements.txt"},
    "flyio": {"fly.toml"},
    "railway": {"railway.json"},
    "render": {"render.yaml"},
    "digitalocean": {".do/app.yaml"},
    "compose": {
        "docker-compose.yml",
        ".env.example",
        "deploy/prometheus/prometheus.yml",
        "deploy/prometheus/alerts.yml",
        "deploy/grafana/dashboards/juststorage.json",
        "deploy/grafana/provisioning/datasources/prometheus.yml",
        "deploy/grafana/provisioning/dashboards/juststorage.yml",
    },
    "kubernetes": {
        "kustomization.yaml",
        "statefulset.yaml",
        "service.yaml",
        "networkpolicy.yaml",
        "servicemonitor.yaml",
        "prometheusrule.yaml",
        "multi/kustomization.yaml",
        "multi/shared-volumes.yaml",
        "multi/pdb.yaml",
    },
}


def run(*args: str) -> Any:
    # The secrets are in the environment, as they would be on an operator's machine.
    return CliRunner().invoke(cli, list(args), env=SECRETS, catch_exceptions=False)


def parse(path: Path) -> Any:
    text = path.read_text("utf-8")
    if path.suffix == ".json" or path.name == "captain-definition":
        return json.loads(text)
    if path.suffix in (".yml", ".yaml"):
        return list(yaml.safe_load_all(text))
    if path.suffix == ".toml":
        return tomllib.loads(text)
    if path.name == "Procfile":
        return dict(line.split(": ", 1) for line in text.splitlines() if line)
    return text.splitlines()


def generated(tmp_path: Path, platform: str, *extra: str) -> dict[str, Any]:
    out = tmp_path / platform
    result = run("deploy", "generate", platform, "--output", str(out), *extra)
    assert result.exit_code == 0, result.output
    files = {str(p.relative_to(out)): p for p in out.rglob("*") if p.is_file()}
    assert set(files) == EXPECTED_FILES[platform]
    for path in files.values():
        text = path.read_text("utf-8")
        for secret in SECRETS.values():
            assert secret not in text, f"{secret} written to {path}"
            assert "db-password-never" not in text
    return {name: parse(path) for name, path in files.items()}


@pytest.mark.parametrize("platform", list(PLATFORMS))
def test_every_file_parses_and_holds_no_secret(tmp_path: Path, platform: str) -> None:
    assert generated(tmp_path, platform)


def test_unknown_platform_lists_the_known_ones() -> None:
    result = run("deploy", "generate", "openshift")
    assert result.exit_code == 2
    for name in PLATFORMS:
        assert name in result.output


def test_existing_files_are_kept_without_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "fly.toml").write_text("mine\n")
    refused = run("deploy", "generate", "flyio", "--output", str(out))
    assert refused.exit_code == 1 and "--force" in refused.output and "fly.toml" in refused.output
    assert (out / "fly.toml").read_text() == "mine\n"
    forced = run("deploy", "generate", "flyio", "--output", str(out), "--force")
    assert forced.exit_code == 0
    assert tomllib.loads((out / "fly.toml").read_text())["app"] == "juststorage"


def test_nothing_is_written_when_one_file_exists(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "deploy" / "prometheus").mkdir(parents=True)
    (out / "deploy" / "prometheus" / "alerts.yml").write_text("mine\n")
    assert run("deploy", "generate", "compose", "--output", str(out)).exit_code == 1
    assert not (out / "docker-compose.yml").exists()


def test_a_bad_app_name_is_refused(tmp_path: Path) -> None:
    result = run(
        "deploy", "generate", "render", "--output", str(tmp_path), "--app-name", "Bad_Name"
    )
    assert result.exit_code == 1 and "app name" in result.output
    assert list(tmp_path.iterdir()) == []


def test_caprover(tmp_path: Path) -> None:
    files = generated(tmp_path, "caprover", "--app-name", "store")
    assert files["captain-definition"] == {"schemaVersion": 2, "dockerfilePath": "./Dockerfile"}
    (app,) = files["caprover-one-click-app.yml"]
    assert app["captainVersion"] == 4
    service = app["services"]["$$cap_appname"]
    assert {"$$cap_appname-hot:/data/hot", "$$cap_appname-cold:/data/cold"} <= set(
        service["volumes"]
    )
    assert service["environment"]["JWT_SECRET"] == "$$cap_jwt_secret"
    assert "$$cap_pg_password" in service["environment"]["DATABASE_URL"]
    assert app["services"]["$$cap_appname-db"]["image"].startswith("postgres:")
    names = {v["id"]: v for v in app["caproverOneClickApp"]["variables"]}
    assert names["$$cap_appname"]["defaultValue"] == "store"
    # 64 hex digits hold 256 random bits; 32 would pass the length check with 128.
    assert names["$$cap_jwt_secret"]["defaultValue"] == "$$cap_gen_random_hex(64)"


def test_heroku(tmp_path: Path) -> None:
    files = generated(tmp_path, "heroku", "--app-name", "store")
    app = files["app.json"]
    assert app["name"] == "store"
    plans = [addon["plan"] for addon in app["addons"]]
    assert plans[0].startswith("heroku-postgresql") and plans[1].startswith("bucketeer:")
    assert app["env"]["JWT_SECRET"] == {
        "description": "HS256 signing secret for JWTs",
        "generator": "secret",
    }
    assert "value" not in app["env"]["API_KEYS"]
    assert files["Procfile"]["web"] == "juststorage serve --host 0.0.0.0 --port $PORT"
    assert files["Procfile"]["release"] == "juststorage migrate"


BUCKETEER = {
    "BUCKETEER_AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "BUCKETEER_AWS_SECRET_ACCESS_KEY": "bucketeer-secret-value",
    "BUCKETEER_AWS_REGION": "eu-west-1",
    "BUCKETEER_BUCKET_NAME": "bucketeer-1234-abcd",
}


def _dyno(tmp_path: Path, command: str, config_vars: dict[str, str]) -> subprocess.Popen[str]:
    """A Procfile command as Heroku runs it: bash sources .profile, then runs it; the
    `juststorage` on PATH only writes down its arguments and environment."""
    shim = tmp_path / "bin" / "juststorage"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        "json.dump({'args': sys.argv[1:], 'env': dict(os.environ)}, sys.stdout)\n"
    )
    shim.chmod(0o755)
    env = {"PATH": f"{shim.parent}:/usr/bin:/bin", "PORT": "5000", **config_vars}
    return subprocess.Popen(
        ["bash", "-c", f"source .profile && {command}"],
        cwd=tmp_path / "heroku",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_heroku_dynos_keep_blobs_in_the_bucketeer_bucket(tmp_path: Path) -> None:
    """Dyno disks are lost at each restart: every process type (and `heroku run`)
    reads the Bucketeer bucket as its storage roots."""
    files = generated(tmp_path, "heroku")
    for kind, command in files["Procfile"].items():
        dyno = _dyno(tmp_path, command, BUCKETEER)
        out, err = dyno.communicate(timeout=30)
        assert dyno.returncode == 0, err
        seen = json.loads(out)
        settings = load_settings(seen["env"])
        assert settings.root_url("hot") == "s3://bucketeer-1234-abcd/hot", kind
        assert settings.root_url("cold") == "s3://bucketeer-1234-abcd/cold", kind
        assert settings.aws_access_key_id == "AKIAEXAMPLE"
        assert settings.aws_secret_access_key == "bucketeer-secret-value"
        assert settings.aws_region == "eu-west-1"
        assert settings.aws_endpoint_url is None  # Bucketeer buckets are Amazon S3
    assert seen["args"] == ["serve", "--host", "0.0.0.0", "--port", "5000"]


def test_heroku_without_the_bucketeer_add_on_refuses_to_start(tmp_path: Path) -> None:
    files = generated(tmp_path, "heroku")
    dyno = _dyno(tmp_path, files["Procfile"]["web"], {})
    out, err = dyno.communicate(timeout=30)
    assert dyno.returncode != 0 and out == ""  # the server never started
    assert "the Bucketeer add-on is missing: heroku addons:create bucketeer:" in err


def test_flyio(tmp_path: Path) -> None:
    fly = generated(tmp_path, "flyio", "--app-name", "store", "--region", "fra")["fly.toml"]
    assert (fly["app"], fly["primary_region"]) == ("store", "fra")
    assert fly["build"]["dockerfile"] == "Dockerfile"
    assert fly["mounts"][0]["destination"] == "/data"
    assert fly["env"]["JUSTSTORAGE_HOT_ROOT"].startswith("/data/")
    service = fly["http_service"]
    assert service["internal_port"] == 8080 and service["checks"][0]["path"] == "/ready"
    assert fly["metrics"]["port"] == 9091  # not the public port
    assert not {"JWT_SECRET", "DATABASE_URL", "API_KEYS"} & set(fly["env"])


def test_railway(tmp_path: Path) -> None:
    config = generated(tmp_path, "railway")["railway.json"]
    assert config["build"] == {"builder": "DOCKERFILE", "dockerfilePath": "Dockerfile"}
    assert config["deploy"]["healthcheckPath"] == "/ready"
    # The start command replaces the image's entry point: it runs it itself, so the
    # root-owned volume is handed over and root dropped.
    assert "exec juststorage-entrypoint serve " in config["deploy"]["startCommand"]


def test_render(tmp_path: Path) -> None:
    (blueprint,) = generated(tmp_path, "render", "--app-name", "store", "--region", "frankfurt")[
        "render.yaml"
    ]
    (web,) = blueprint["services"]
    assert (web["name"], web["region"], web["runtime"]) == ("store", "frankfurt", "docker")
    assert web["healthCheckPath"] == "/ready" and web["disk"]["mountPath"] == "/data"
    env = {v["key"]: v for v in web["envVars"]}
    assert env["DATABASE_URL"]["fromDatabase"] == {
        "name": "store-db",
        "property": "connectionString",
    }
    assert env["JWT_SECRET"] == {"key": "JWT_SECRET", "generateValue": True}
    assert env["API_KEYS"] == {"key": "API_KEYS", "sync": False}
    assert blueprint["databases"][0]["name"] == "store-db"


def test_digitalocean(tmp_path: Path) -> None:
    (spec,) = generated(tmp_path, "digitalocean", "--app-name", "store", "--region", "ams")[
        ".do/app.yaml"
    ]
    assert (spec["name"], spec["region"]) == ("store", "ams")
    (service,) = spec["services"]
    assert service["health_check"]["http_path"] == "/ready" and service["http_port"] == 8080
    env = {v["key"]: v for v in service["envs"]}
    assert env["DATABASE_URL"]["value"] == "${store-db.DATABASE_URL}"
    for secret in ("JWT_SECRET", "API_KEYS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[secret]["type"] == "SECRET" and "value" not in env[secret]
    assert spec["databases"][0] == {
        "name": "store-db",
        "engine": "PG",
        "version": "16",
        "production": False,
    }


def test_digitalocean_keeps_blobs_in_a_space(tmp_path: Path) -> None:
    """App Platform has no volumes: the roots are s3:// roots in a Space of the
    app's region, which the server's settings read as such."""
    (spec,) = generated(tmp_path, "digitalocean", "--app-name", "store", "--region", "fra")[
        ".do/app.yaml"
    ]
    (service,) = spec["services"]
    plain = {v["key"]: v["value"] for v in service["envs"] if "value" in v}
    secrets = {v["key"]: "s" * 32 for v in service["envs"] if "type" in v}  # set in the panel
    settings = load_settings({**plain, **secrets, "API_KEYS": ""})
    assert settings.root_url("hot") == "s3://store-blobs/hot"
    assert settings.root_url("cold") == "s3://store-blobs/cold"
    assert settings.aws_endpoint_url == "https://fra1.digitaloceanspaces.com"
    assert settings.aws_region == "fra1"
    assert settings.aws_access_key_id and settings.aws_secret_access_key
    text = (tmp_path / "digitalocean" / ".do" / "app.yaml").read_text("utf-8")
    assert "store-blobs in fra1" in text  # the notes say which Space to create


@pytest.mark.parametrize("platform", [p for p, e in PLATFORMS.items() if e.uses_region])
def test_an_unknown_region_is_refused_with_the_valid_ones(tmp_path: Path, platform: str) -> None:
    out = tmp_path / "out"
    result = run("deploy", "generate", platform, "--output", str(out), "--region", "atlantis")
    assert result.exit_code == 1
    assert f"unknown {platform} region 'atlantis'; valid regions: " in result.output
    for region in PLATFORMS[platform].regions:
        assert region in result.output
    assert not out.exists()  # nothing written
    good = PLATFORMS[platform].regions[-1]
    result = run("deploy", "generate", platform, "--output", str(out), "--region", good)
    assert result.exit_code == 0


def test_heroku_creates_the_app_in_the_region(tmp_path: Path) -> None:
    result = run("deploy", "generate", "heroku", "--output", str(tmp_path), "--region", "eu")
    assert "next: heroku create juststorage --region eu --manifest" in result.output


FIRST_CREDENTIAL = {
    "compose": "docker compose run --rm juststorage keys create --tenant '*' --scope admin",
    "kubernetes": "kubectl exec statefulset/store -- juststorage keys create --tenant '*'"
    " --scope admin",
    "heroku": "heroku run --app store -- juststorage keys create --tenant '*' --scope admin",
    "flyio": 'fly ssh console --app store --command "juststorage-entrypoint keys create'
    ' --tenant=* --scope admin"',
    "railway": "juststorage-entrypoint keys create --tenant '*' --scope admin",
    "render": "juststorage-entrypoint keys create --tenant '*' --scope admin",
    "digitalocean": "juststorage-entrypoint keys create --tenant '*' --scope admin",
    "caprover": "juststorage-entrypoint keys create --tenant '*' --scope admin",
}


@pytest.mark.parametrize("platform", list(PLATFORMS))
def test_generate_prints_how_to_get_the_first_credential_last(
    tmp_path: Path, platform: str
) -> None:
    result = run("deploy", "generate", platform, "--output", str(tmp_path), "--app-name", "store")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    heading = next(i for i, line in enumerate(lines) if line.startswith("first credential"))
    assert all(not line.startswith("wrote ") for line in lines[heading:])  # the last step
    assert FIRST_CREDENTIAL[platform] in "\n".join(lines[heading:])
    # The files say it too, where their format has comments.
    commented = [p for p in tmp_path.rglob("*") if p.suffix in (".yml", ".yaml", ".toml")]
    if platform in ("compose", "kubernetes", "flyio", "render", "digitalocean", "caprover"):
        texts = " ".join(" ".join(p.read_text("utf-8").split()) for p in commented)
        assert FIRST_CREDENTIAL[platform] in texts.replace(" # ", " ")


def test_the_keys_create_commands_it_prints_are_ones_the_cli_takes() -> None:
    keys = cli.get_command(click.Context(cli), "keys")
    assert isinstance(keys, click.Group)
    create = keys.commands["create"]
    for platform in ("compose", "flyio"):
        words = shlex.split(FIRST_CREDENTIAL[platform])
        if platform == "flyio":  # the command fly runs on the machine
            words = words[-1].split()
        at = words.index("keys")
        assert words[at + 1] == "create"
        # Parsed under the root and `keys` contexts, as the CLI does: a context made
        # without them would cache a help option without `-h` on the shared command.
        root = cli.make_context("juststorage", [], resilient_parsing=True)
        group = keys.make_context("keys", [], parent=root, resilient_parsing=True)
        context = create.make_context("create", words[at + 2 :], parent=group)
        assert context.params["tenants"] == ("*",) and context.params["scopes"] == ("admin",)


def test_compose(tmp_path: Path) -> None:
    files = generated(tmp_path, "compose", "--app-name", "store")
    (compose,) = files["docker-compose.yml"]
    assert compose["name"] == "store"
    app = compose["services"]["juststorage"]
    assert app["environment"]["JWT_SECRET"].startswith("${JWT_SECRET")
    assert {"hot-data:/data/hot", "cold-data:/data/cold"} <= set(app["volumes"])
    assert compose["services"]["prometheus"]["profiles"] == ["monitoring"]
    env_example = dict(line.split("=", 1) for line in files[".env.example"] if "=" in line)
    assert env_example["JWT_SECRET"] == "" and env_example["POSTGRES_PASSWORD"] == ""
    assert files["deploy/grafana/dashboards/juststorage.json"]["panels"]
    (prometheus,) = files["deploy/prometheus/prometheus.yml"]
    assert prometheus["scrape_configs"][0]["job_name"] == "juststorage"


def test_kubernetes_app_name_names_everything(tmp_path: Path) -> None:
    files = generated(tmp_path, "kubernetes", "--app-name", "store")
    (statefulset,) = files["statefulset.yaml"]
    assert statefulset["metadata"]["name"] == "store"
    refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in statefulset["spec"]["template"]["spec"]["containers"][0]["env"]
        if "valueFrom" in e
    }
    assert refs == {"store"}
    (rule,) = files["prometheusrule.yaml"]
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert exprs and all('job="store"' in e for e in exprs)


def _metrics_addr(platform: str, files: dict[str, Any]) -> str | None:
    """The JUSTSTORAGE_METRICS_ADDR a platform's files give the service, if any."""
    name = "JUSTSTORAGE_METRICS_ADDR"
    if platform == "caprover":
        (app,) = files["caprover-one-click-app.yml"]
        env = app["services"]["$$cap_appname"]["environment"]
        return env.get(name)
    if platform == "heroku":
        return files["app.json"]["env"].get(name, {}).get("value")
    if platform == "flyio":
        return files["fly.toml"]["env"].get(name)
    if platform == "railway":
        command = files["railway.json"]["deploy"]["startCommand"]
        match = re.search(r"export JUSTSTORAGE_METRICS_ADDR=\"\$\{[A-Z_]+:-([^}]+)\}\"", command)
        return match.group(1) if match else None
    if platform == "render":
        (blueprint,) = files["render.yaml"]
        (web,) = blueprint["services"]
        return {v["key"]: v.get("value") for v in web["envVars"]}.get(name)
    if platform == "digitalocean":
        (spec,) = files[".do/app.yaml"]
        (service,) = spec["services"]
        return {v["key"]: v.get("value") for v in service["envs"]}.get(name)
    if platform == "compose":
        (compose,) = files["docker-compose.yml"]
        return compose["services"]["juststorage"]["environment"].get(name)
    assert platform == "kubernetes"
    (statefulset,) = files["statefulset.yaml"]
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container["env"]}.get(name)


@pytest.mark.parametrize("platform", list(PLATFORMS))
def test_every_platform_serves_metrics_on_the_metrics_listener(
    tmp_path: Path, platform: str
) -> None:
    """SPEC §2: /metrics is operator data. With JUSTSTORAGE_METRICS_ADDR set the public
    listener answers 404 for it, and whatever scrapes it is pointed at that port."""
    files = generated(tmp_path, platform)
    address = _metrics_addr(platform, files)
    assert address is not None, f"{platform} serves /metrics on its public listener"
    port = int(address.rpartition(":")[2])
    assert port != 8080
    if platform == "flyio":
        assert files["fly.toml"]["metrics"] == {"port": port, "path": "/metrics"}
    if platform == "compose":
        (compose,) = files["docker-compose.yml"]
        published = compose["services"]["juststorage"]["ports"]
        assert all(not p.endswith(f":{port}") for p in published)
        (prometheus,) = files["deploy/prometheus/prometheus.yml"]
        (job,) = prometheus["scrape_configs"]
        assert job["static_configs"] == [{"targets": [f"juststorage:{port}"]}]
    if platform == "kubernetes":
        (statefulset,) = files["statefulset.yaml"]
        (container,) = statefulset["spec"]["template"]["spec"]["containers"]
        container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        (monitor,) = files["servicemonitor.yaml"]
        wanted = monitor["spec"]["selector"]["matchLabels"].items()
        (service,) = (s for s in files["service.yaml"] if wanted <= s["metadata"]["labels"].items())
        service_ports = {p["name"]: p for p in service["spec"]["ports"]}
        (endpoint,) = monitor["spec"]["endpoints"]
        scraped = service_ports[endpoint["port"]]
        assert container_ports[scraped["targetPort"]] == port
        assert endpoint["path"] == "/metrics"


@pytest.mark.parametrize(
    ("platform", "path", "who"),
    [
        ("flyio", "fly.toml", "every app of the same Fly organization"),
        ("render", "render.yaml", "every service of the same Render workspace and region"),
        ("digitalocean", ".do/app.yaml", "the other components of this app"),
        ("caprover", "caprover-one-click-app.yml", "every app on this CapRover instance"),
    ],
)
def test_paas_files_say_who_reaches_the_metrics_port(
    tmp_path: Path, platform: str, path: str, who: str
) -> None:
    """Port 9091 is closed to the internet, not private to the operator: each file
    names who on the platform's private network reaches /metrics (docs/deployment.md)."""
    generated(tmp_path, platform)
    text = " ".join((tmp_path / platform / path).read_text("utf-8").split())
    text = text.replace(" # ", " ")  # notes wrap over comment lines
    assert who in text and "9091" in text, text[:800]
