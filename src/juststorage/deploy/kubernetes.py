"""Kubernetes: kustomize base (one replica) and `multi/` (several, shared RWX volumes)."""

from __future__ import annotations

from juststorage.deploy.options import DeployOptions, fill, template

_BASE = ("kustomization.yaml", "statefulset.yaml", "service.yaml", "servicemonitor.yaml")
_MULTI = ("kustomization.yaml", "shared-volumes.yaml", "pdb.yaml")


def alert_rules(job: str) -> str:
    """deploy/prometheus/alerts.yml with the scrape job's name filled in."""
    return template("monitoring", "alerts.yml").replace("__JOB__", job)


def _prometheus_rule(options: DeployOptions) -> str:
    # The Prometheus Operator names the job after the Service: the app name.
    groups = alert_rules(options.app_name).split("\ngroups:\n", 1)[1]
    head = (
        "apiVersion: monitoring.coreos.com/v1\n"
        "kind: PrometheusRule\n"
        "metadata:\n"
        f"  name: {options.app_name}\n"
        "  labels:\n"
        f"    app.kubernetes.io/name: {options.app_name}\n"
        "spec:\n"
        "  groups:\n"
    )
    return head + "".join(f"  {line}\n" if line else "\n" for line in groups.splitlines())


def files(options: DeployOptions) -> dict[str, str]:
    out = {name: fill(template("kubernetes", name), options) for name in _BASE}
    out["prometheusrule.yaml"] = _prometheus_rule(options)
    for name in _MULTI:
        out[f"multi/{name}"] = fill(template("kubernetes", "multi", name), options)
    return out
