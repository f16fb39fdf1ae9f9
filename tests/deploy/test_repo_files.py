"""The repository's deployment files: in sync with the generator, and valid for the
tools that read them (compose specification, Dockerfile, Kubernetes 1.30, promtool)."""

from __future__ import annotations

import copy
import json
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from juststorage.deploy.generate import generate
from juststorage.deploy.options import DeployOptions

KUBERNETES_VERSION = "1.30.0"
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}  # CRDs: no schema in kubernetes-validate


@pytest.mark.parametrize(
    ("platform", "where"), [("compose", "."), ("kubernetes", "deploy/kubernetes")]
)
def test_repository_copies_equal_the_generated_files(repo: Path, platform: str, where: str) -> None:
    """Regenerate with `juststorage deploy generate <platform> --output <where> --force`."""
    for relative, text in generate(platform, DeployOptions()).items():
        assert (repo / where / relative).read_text("utf-8") == text, relative


def test_compose_file_follows_the_compose_specification(repo: Path) -> None:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text("utf-8"))
    compose = yaml.safe_load((repo / "docker-compose.yml").read_text("utf-8"))
    jsonschema.validate(compose, schema)
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (repo / source).exists(), f"{source} is mounted but missing"
    env_example = (repo / ".env.example").read_text("utf-8")
    for name in ("POSTGRES_PASSWORD", "JWT_SECRET", "GRAFANA_ADMIN_PASSWORD"):
        assert f"\n{name}=\n" in env_example  # named, left empty


def test_compose_file_rejected_by_the_schema_when_broken() -> None:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text("utf-8"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"services": {"x": {"ports": [{"bogus": 1}]}}}, schema)


def _dockerfile(repo: Path) -> DockerfileParser:
    parser = DockerfileParser(path=str(repo / "Dockerfile"))
    return parser


def _final_stage(parser: DockerfileParser) -> list[dict[str, Any]]:
    instructions: list[dict[str, Any]] = parser.structure
    last_from = max(i for i, ins in enumerate(instructions) if ins["instruction"] == "FROM")
    return instructions[last_from:]


def test_dockerfile_is_multi_stage_slim_and_non_root(repo: Path) -> None:
    parser = _dockerfile(repo)
    froms = [i["value"] for i in parser.structure if i["instruction"] == "FROM"]
    assert len(froms) >= 2 and all("-slim" in f for f in froms), froms
    final = _final_stage(parser)
    kinds = [i["instruction"] for i in final]
    for needed in ("USER", "HEALTHCHECK", "VOLUME", "ENTRYPOINT", "CMD", "EXPOSE"):
        assert needed in kinds, needed
    user = next(i["value"] for i in final if i["instruction"] == "USER")
    assert user.split(":")[0] not in ("root", "0")
    volumes = json.loads(next(i["value"] for i in final if i["instruction"] == "VOLUME"))
    assert {"/data/hot", "/data/cold"} <= set(volumes)
    assert json.loads(next(i["value"] for i in final if i["instruction"] == "ENTRYPOINT")) == [
        "juststorage"
    ]
    assert json.loads(next(i["value"] for i in final if i["instruction"] == "CMD")) == ["serve"]
    assert "COPY --from=build" in parser.content


def _manifests(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc]


def _validate(doc: dict[str, Any]) -> None:
    if doc["kind"] in OPERATOR_KINDS:
        assert doc["apiVersion"] == "monitoring.coreos.com/v1"
        assert doc["metadata"]["name"] and doc["spec"]
        return
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def _json_patch(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """The RFC 6902 subset kustomize patches here use: add, remove, replace."""
    doc = copy.deepcopy(doc)
    for op in ops:
        *parents, last = op["path"].strip("/").split("/")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if op["op"] == "remove":
            del node[last]
        elif isinstance(node, list) and last == "-":
            node.append(op["value"])
        else:
            node[last] = op["value"]
    return doc


def test_kubernetes_base_is_valid(repo: Path) -> None:
    base = repo / "deploy" / "kubernetes"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text("utf-8"))
    kinds = []
    for resource in kustomization["resources"]:
        for doc in _manifests(base / resource):
            _validate(doc)
            kinds.append(doc["kind"])
    assert {"StatefulSet", "Service", "ServiceMonitor", "PrometheusRule"} <= set(kinds)
    (statefulset,) = _manifests(base / "statefulset.yaml")
    pod = statefulset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["resources"]["requests"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    secrets = {e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert secrets == {"DATABASE_URL", "JWT_SECRET", "API_KEYS"}
    claims = {c["metadata"]["name"] for c in statefulset["spec"]["volumeClaimTemplates"]}
    assert claims == {"hot", "cold"}


def test_kubernetes_multi_replica_variant_is_valid(repo: Path) -> None:
    multi = repo / "deploy" / "kubernetes" / "multi"
    kustomization = yaml.safe_load((multi / "kustomization.yaml").read_text("utf-8"))
    (statefulset,) = _manifests(multi.parent / "statefulset.yaml")
    (patch,) = kustomization["patches"]
    patched = _json_patch(statefulset, yaml.safe_load(patch["patch"]))
    _validate(patched)
    assert patched["spec"]["replicas"] > 1 and "volumeClaimTemplates" not in patched["spec"]
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in patched["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    shared = []
    for resource in kustomization["resources"]:
        if resource == "../":
            continue
        for doc in _manifests(multi / resource):
            _validate(doc)
            if doc["kind"] == "PersistentVolumeClaim":
                assert doc["spec"]["accessModes"] == ["ReadWriteMany"]
                shared.append(doc["metadata"]["name"])
    assert claims == set(shared) and len(shared) == 2


def test_kubernetes_validation_catches_a_broken_manifest(repo: Path) -> None:
    (statefulset,) = _manifests(repo / "deploy" / "kubernetes" / "statefulset.yaml")
    statefulset["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, KUBERNETES_VERSION, strict=True)


def test_alert_rules_pass_promtool(repo: Path, promtool: str, tmp_path: Path) -> None:
    rules = repo / "deploy" / "prometheus" / "alerts.yml"
    (rule,) = _manifests(repo / "deploy" / "kubernetes" / "prometheusrule.yaml")
    operator_rules = tmp_path / "operator-rules.yml"
    operator_rules.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    for path in (rules, operator_rules):
        checked = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "SUCCESS" in checked.stdout + checked.stderr


def test_alerts_fire_on_their_conditions(repo: Path, promtool: str) -> None:
    """promtool's rule unit tests (deploy/prometheus/alerts.test.yml)."""
    tested = subprocess.run(
        [promtool, "test", "rules", "alerts.test.yml"],
        cwd=repo / "deploy" / "prometheus",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
