"""Kubernetes: kustomize base (one replica) and `multi/` (several, shared RWX volumes).

Every object is named and labelled after the app name; the Secret of the same
name holds DATABASE_URL, JWT_SECRET and API_KEYS. The PrometheusRule carries the
alert groups of monitoring.py for the job the ServiceMonitor names after the app
(its `jobLabel`).

Tenants reach the `http` port through the Service named after the app; /metrics is
operator data (SPEC §2), so its port is on a Service of its own (`<app>-metrics`,
which the ServiceMonitor selects) and a NetworkPolicy admits to it only the
namespaces that carry METRICS_SCRAPER_LABEL (the operator labels the monitoring one).
"""

from __future__ import annotations

from typing import Any

from juststorage.deploy import monitoring
from juststorage.deploy.credential import KEYS_CREATE
from juststorage.deploy.documents import yaml_body, yaml_text
from juststorage.deploy.options import DeployOptions

_PORT = 8080
_CLAIMS = {"hot": "50Gi", "cold": "200Gi"}  # blob volumes by storage class
_MULTI_REPLICAS = 3
_METRICS_COMPONENT = {"app.kubernetes.io/component": "metrics"}
# The namespace label that lets a namespace's pods reach the metrics port.
METRICS_SCRAPER_LABEL = ("juststorage.io/metrics-scraper", "true")


def _metadata(name: str, app: str) -> dict[str, Any]:
    return {"name": name, "labels": {"app.kubernetes.io/name": app}}


def _selector(app: str) -> dict[str, Any]:
    return {"matchLabels": {"app.kubernetes.io/name": app}}


def _secret_env(app: str, key: str, *, optional: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": app, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": key, "valueFrom": {"secretKeyRef": ref}}


def _probe(path: str, period_s: int, failures: int, timeout_s: int | None) -> dict[str, Any]:
    probe: dict[str, Any] = {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period_s}
    if timeout_s is not None:
        probe["timeoutSeconds"] = timeout_s
    probe["failureThreshold"] = failures
    return probe


def _container(app: str) -> dict[str, Any]:
    plain_env = {
        "JUSTSTORAGE_HOST": "0.0.0.0",
        "JUSTSTORAGE_PORT": str(_PORT),
        "JUSTSTORAGE_WORKERS": "2",
        # /metrics on its own port, which only the ServiceMonitor scrapes (SPEC §2).
        "JUSTSTORAGE_METRICS_ADDR": monitoring.METRICS_ADDR,
    }
    return {
        "name": "juststorage",
        "image": "juststorage:latest",
        "imagePullPolicy": "IfNotPresent",
        "args": ["serve"],
        "ports": [
            {"name": "http", "containerPort": _PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": monitoring.METRICS_PORT, "protocol": "TCP"},
        ],
        "env": [
            *({"name": name, "value": value} for name, value in plain_env.items()),
            _secret_env(app, "DATABASE_URL"),
            _secret_env(app, "JWT_SECRET"),
            _secret_env(app, "API_KEYS", optional=True),
        ],
        "livenessProbe": _probe("/health", 10, 3, timeout_s=3),
        "readinessProbe": _probe("/ready", 10, 3, timeout_s=5),
        "startupProbe": _probe("/health", 2, 60, timeout_s=None),
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": name, "mountPath": f"/data/{name}"} for name in (*_CLAIMS, "meta")
        ]
        + [{"name": "tmp", "mountPath": "/tmp"}],
    }


def _statefulset(app: str) -> dict[str, Any]:
    pod = {
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 60,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(app)],
        "volumes": [{"name": "meta", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
    }
    claims = [
        {
            "metadata": {"name": name},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": size}},
            },
        }
        for name, size in _CLAIMS.items()
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _metadata(app, app),
        "spec": {
            "serviceName": f"{app}-headless",
            "replicas": 1,
            "selector": _selector(app),
            "template": {"metadata": {"labels": {"app.kubernetes.io/name": app}}, "spec": pod},
            "volumeClaimTemplates": claims,
        },
    }


def _service(name: str, app: str, port: dict[str, Any], **labels: str) -> dict[str, Any]:
    metadata = _metadata(name, app)
    metadata["labels"].update(labels)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/name": app},
            "ports": [{**port, "protocol": "TCP"}],
        },
    }


def _services(app: str) -> list[dict[str, Any]]:
    port = {"name": "http", "port": _PORT, "targetPort": "http"}
    metrics_port = {"name": "metrics", "port": monitoring.METRICS_PORT, "targetPort": "metrics"}
    headless = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(f"{app}-headless", app),
        "spec": {
            "clusterIP": "None",
            "selector": {"app.kubernetes.io/name": app},
            "ports": [port],
        },
    }
    return [
        _service(app, app, port),  # what tenants use: the API only
        _service(f"{app}-metrics", app, metrics_port, **_METRICS_COMPONENT),
        headless,
    ]


def _network_policy(app: str) -> dict[str, Any]:
    """`http` from anywhere; `metrics` only from the labelled (monitoring) namespaces.

    A Service only names ports: any pod can still dial a pod's address, so this
    policy is what keeps tenants' pods off the metrics port.
    """
    key, value = METRICS_SCRAPER_LABEL
    scrapers = {"namespaceSelector": {"matchLabels": {key: value}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(app, app),
        "spec": {
            "podSelector": _selector(app),
            "policyTypes": ["Ingress"],
            "ingress": [
                {"ports": [{"protocol": "TCP", "port": "http"}]},
                {"from": [scrapers], "ports": [{"protocol": "TCP", "port": "metrics"}]},
            ],
        },
    }


# The Kubernetes namespace of a scraped pod, under a name of its own: Prometheus
# Operator gives every target a `namespace` label, which would rename the metrics'
# own `namespace` label (SPEC §2: the store's namespace) to `exported_namespace`.
KUBERNETES_NAMESPACE_LABEL = "kubernetes_namespace"


def _service_monitor(app: str) -> dict[str, Any]:
    endpoint = {
        "port": "metrics",
        "path": "/metrics",
        "interval": "30s",
        # Target relabelings run before the scrape: the target's `namespace` is moved
        # aside, so the series keep the store's `namespace` as the server exports it.
        # (`honorLabels: true` would keep it too, but would give the series the
        # server exports with `namespace=""` the pod's Kubernetes namespace instead.)
        "relabelings": [
            {
                "action": "replace",
                "sourceLabels": ["namespace"],
                "targetLabel": KUBERNETES_NAMESPACE_LABEL,
            },
            {"action": "labeldrop", "regex": "namespace"},
        ],
    }
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _metadata(app, app),
        "spec": {
            # `job` is the value of this label of the Service (the app name), which
            # the PrometheusRule's expressions select; by default it would be the
            # Service's name, `<app>-metrics`.
            "jobLabel": "app.kubernetes.io/name",
            # the `<app>-metrics` Service only: the tenants' Service and the headless
            # one have no metrics port, and selecting them would scrape pods twice
            "selector": {"matchLabels": {"app.kubernetes.io/name": app, **_METRICS_COMPONENT}},
            "endpoints": [endpoint],
        },
    }


def _prometheus_rule(app: str) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": _metadata(app, app),
        "spec": {"groups": monitoring.alert_groups(job=app)},
    }


def _kustomization(app: str) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "labels": [{"pairs": {"app.kubernetes.io/part-of": app}}],
        "resources": [
            "statefulset.yaml",
            "service.yaml",
            "networkpolicy.yaml",
            "servicemonitor.yaml",
            "prometheusrule.yaml",
        ],
    }


def _multi_patch(app: str) -> list[dict[str, Any]]:
    """JSON patch of the StatefulSet: more replicas, the shared claims instead of
    per-pod ones."""
    ops: list[dict[str, Any]] = [
        {"op": "replace", "path": "/spec/replicas", "value": _MULTI_REPLICAS},
        {"op": "add", "path": "/spec/podManagementPolicy", "value": "Parallel"},
        {"op": "remove", "path": "/spec/volumeClaimTemplates"},
    ]
    for name in _CLAIMS:
        volume = {"name": name, "persistentVolumeClaim": {"claimName": f"{app}-{name}"}}
        ops.append({"op": "add", "path": "/spec/template/spec/volumes/-", "value": volume})
    return ops


def _multi_kustomization(app: str) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../", "shared-volumes.yaml", "pdb.yaml"],
        "patches": [
            {
                "target": {"kind": "StatefulSet", "name": app},
                # kustomize takes the patch as a YAML text inside the kustomization.
                "patch": yaml_body([_multi_patch(app)]).rstrip("\n"),
            }
        ],
    }


def _shared_claims(app: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": _metadata(f"{app}-{name}", app),
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": size}},
            },
        }
        for name, size in _CLAIMS.items()
    ]


def _disruption_budget(app: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(app, app),
        "spec": {"minAvailable": _MULTI_REPLICAS - 1, "selector": _selector(app)},
    }


def first_credential(options: DeployOptions) -> list[str]:
    """The command that prints the first admin API key."""
    return [f"kubectl exec statefulset/{options.app_name} -- juststorage {KEYS_CREATE}"]


def files(options: DeployOptions) -> dict[str, str]:
    """The kustomize base and its `multi/` overlay, named after the app."""
    app = options.app_name
    base_notes = [
        "JustStorage on Kubernetes (one replica; `multi/` runs several on PostgreSQL).",
        f"  kubectl create secret generic {app} \\",
        "    --from-literal=DATABASE_URL='postgresql://USER:PASSWORD@HOST:5432/DB' \\",
        "    --from-literal=JWT_SECRET=\"$(openssl rand -hex 32)\" --from-literal=API_KEYS=''",
        "  kubectl apply -k .",
        "The first credential, an admin API key printed once (when the pod is ready):",
        *(f"  {line}" for line in first_credential(options)),
        "servicemonitor.yaml and prometheusrule.yaml need the Prometheus Operator's CRDs;",
        "drop them from `resources` without it. Validated against Kubernetes 1.30.",
        "networkpolicy.yaml opens port 9091 (/metrics) only to namespaces labelled",
        f"  kubectl label namespace monitoring {'='.join(METRICS_SCRAPER_LABEL)}",
        "(the one Prometheus runs in); it needs a CNI that enforces NetworkPolicy.",
    ]
    multi_notes = [
        "Several replicas sharing one PostgreSQL (DATABASE_URL in the secret must be",
        "postgresql://...) and one set of ReadWriteMany volumes (NFS, CephFS, EFS, ...):",
        "every replica must see every blob.",
        "  kubectl apply -k multi/",
    ]
    claim_notes = [
        "Every replica mounts these claims: set `storageClassName:` in each spec to a",
        "ReadWriteMany class (e.g. nfs-fast for hot, nfs-bulk for cold).",
    ]
    return {
        "kustomization.yaml": yaml_text(__name__, _kustomization(app), notes=base_notes),
        "statefulset.yaml": yaml_text(__name__, _statefulset(app)),
        "service.yaml": yaml_text(__name__, *_services(app)),
        "networkpolicy.yaml": yaml_text(__name__, _network_policy(app)),
        "servicemonitor.yaml": yaml_text(__name__, _service_monitor(app)),
        "prometheusrule.yaml": yaml_text(__name__, _prometheus_rule(app)),
        "multi/kustomization.yaml": yaml_text(
            __name__, _multi_kustomization(app), notes=multi_notes
        ),
        "multi/shared-volumes.yaml": yaml_text(__name__, *_shared_claims(app), notes=claim_notes),
        "multi/pdb.yaml": yaml_text(__name__, _disruption_budget(app)),
    }
