"""deploy/k8s: manifests valid against Kubernetes' schemas, consistent with each other and
with the services they run (settings, routes, ports). No cluster needed."""

import copy
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources as package_files
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kubernetes_validate import ValidationError, validate
from kubernetes_validate.utils import resources_from_file
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

import catalog.config
import catalog.main
import gateway.config
import gateway.main
import processor.config
import processor.main
from tests.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# The oldest Kubernetes the manifests support; kubernetes-validate>=1.30 ships its schemas.
KUBERNETES_VERSION = "1.30"
KUSTOMIZATION = "kustomization.yaml"
# Applied by hand (kubectl create secret generic), never by kustomize: see the file.
SECRET_TEMPLATE = "secret.example.yaml"
NAMESPACE = "darkroom"

Resource = dict[str, Any]


class ServiceUnderTest:
    """What a Deployment runs: its settings model, env prefix and app (data under a folder)."""

    def __init__(
        self, settings: type[BaseSettings], prefix: str, app: Callable[[Path], FastAPI]
    ) -> None:
        self.settings = settings
        self.prefix = prefix
        self.app = app


def catalog_app(data: Path) -> FastAPI:
    """The catalog on a store of its own under ``data``, sweeping nothing."""
    settings = catalog.config.Settings(
        store=f"sqlite:///{data / 'catalog.db'}", blobs=data / "blobs", sweep_interval_s=0
    )
    return catalog.main.create_app(settings=settings)


def gateway_app(data: Path) -> FastAPI:
    """The gateway, its backends on loopback ports nobody listens on."""
    settings = gateway.config.Settings(
        catalog_url=f"http://127.0.0.1:{free_port()}",
        processor_url=f"http://127.0.0.1:{free_port()}",
        metadata_timeout_s=1,
        connect_timeout_s=1,
    )
    return gateway.main.create_app(settings=settings)


SERVICES = {
    "catalog": ServiceUnderTest(catalog.config.Settings, "CATALOG_", catalog_app),
    "processor": ServiceUnderTest(
        processor.config.Settings,
        "PROCESSOR_",
        lambda _: processor.main.create_app(settings=processor.config.Settings()),
    ),
    "gateway": ServiceUnderTest(gateway.config.Settings, "GATEWAY_", gateway_app),
}


def load(path: Path) -> list[Resource]:
    """The YAML documents of one file."""
    documents: list[Resource] = resources_from_file(str(path))
    return documents


def manifest_files() -> list[Path]:
    """Every manifest in deploy/k8s except the kustomization."""
    return sorted(path for path in K8S.glob("*.yaml") if path.name != KUSTOMIZATION)


@cache
def all_resources() -> tuple[tuple[str, Resource], ...]:
    """(file name, resource) for every document in deploy/k8s, the Secret template included."""
    return tuple((path.name, resource) for path in manifest_files() for resource in load(path))


def of_kind(kind: str) -> dict[str, Resource]:
    """The resources of one kind, by name."""
    return {
        resource["metadata"]["name"]: resource
        for _, resource in all_resources()
        if resource["kind"] == kind
    }


def only(kind: str) -> Resource:
    """The single resource of ``kind``."""
    found = list(of_kind(kind).values())
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container_of(deployment: Resource) -> Resource:
    """The Deployment's one container."""
    containers: list[Resource] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def quantity(value: str | int) -> float:
    """A Kubernetes quantity as a number: cores for CPU, bytes for memory."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match is not None, f"not a quantity: {value!r}"
    number, unit = match.groups()
    return float(number) * (units[unit] if unit else 1)


def resolved_env(deployment: Resource) -> dict[str, str]:
    """The container's environment, with ConfigMap and Secret-template references resolved."""
    config_map = only("ConfigMap")["data"]
    secret = only("Secret")["stringData"]
    env: dict[str, str] = {}
    for var in container_of(deployment).get("env", []):
        source = var.get("valueFrom", {})
        if "value" in var:
            env[var["name"]] = var["value"]
        elif "configMapKeyRef" in source:
            env[var["name"]] = config_map[source["configMapKeyRef"]["key"]]
        elif "secretKeyRef" in source:
            env[var["name"]] = secret[source["secretKeyRef"]["key"]]
        else:
            pytest.fail(f"{var['name']}: unsupported env source {source}")
    return env


def env_names(service: ServiceUnderTest) -> dict[str, str]:
    """Environment variable -> field: the prefixed name, or the field's own aliases."""
    names: dict[str, str] = {}
    for field, info in service.settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(
                {choice.upper(): field for choice in alias.choices if isinstance(choice, str)}
            )
        elif isinstance(alias, str):
            names[alias.upper()] = field
        else:
            names[service.prefix + field.upper()] = field
    return names


def key_refs(deployment: Resource, ref: str) -> Iterator[tuple[str, Resource]]:
    """(variable, reference) for each env var of the container taken from a ``ref``."""
    for var in container_of(deployment).get("env", []):
        found = var.get("valueFrom", {}).get(ref)
        if found is not None:
            yield var["name"], found


# --- schemas -----------------------------------------------------------------------------


def test_the_schemas_ship_inside_the_validator() -> None:
    """Validation reads the package's own files: it needs no network."""
    schemas = package_files.files("kubernetes_validate") / "kubernetes-json-schema"
    strict = schemas / f"v{KUBERNETES_VERSION}.0-local-strict"
    assert (strict / "deployment-apps-v1.json").is_file()
    assert (strict / "horizontalpodautoscaler-autoscaling-v2.json").is_file()


@pytest.mark.parametrize(
    ("file", "resource"),
    all_resources(),
    ids=[f"{file}:{res['kind']}/{res['metadata']['name']}" for file, res in all_resources()],
)
def test_each_manifest_is_valid_against_the_kubernetes_schema(
    file: str, resource: Resource
) -> None:
    """Strict: an unknown or misspelt field fails, not only a wrong type."""
    assert validate(resource, KUBERNETES_VERSION, strict=True) == KUBERNETES_VERSION


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "replica"), 2),
        (("spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"), "8002"),
        (("spec", "template", "spec", "containers", 0, "resources", "limits"), ["2"]),
    ],
)
def test_the_validator_rejects_a_broken_deployment(path: tuple[str | int, ...], value: Any) -> None:
    """The check above can fail: a misspelt field or a wrong type is refused."""
    broken = copy.deepcopy(of_kind("Deployment")["processor"])
    parent: Any = broken
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    with pytest.raises(ValidationError):
        validate(broken, KUBERNETES_VERSION, strict=True)


# --- kustomize -----------------------------------------------------------------------------


def kustomization() -> Resource:
    """deploy/k8s/kustomization.yaml."""
    (document,) = load(K8S / KUSTOMIZATION)
    return document


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    """Applying -k creates everything, and never overwrites real keys with placeholders."""
    listed = kustomization()["resources"]
    assert len(listed) == len(set(listed))
    assert set(listed) == {path.name for path in manifest_files()} - {SECRET_TEMPLATE}


def test_kustomize_renders_the_listed_resources_namespaced_and_valid(tmp_path: Path) -> None:
    """kubectl's built-in kustomize turns the folder into valid, namespaced resources."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the kustomize build is not checked")
    built = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True
    )
    output = tmp_path / "built.yaml"
    output.write_text(built.stdout)
    rendered = load(output)
    expected = {
        (resource["kind"], resource["metadata"]["name"])
        for file, resource in all_resources()
        if file != SECRET_TEMPLATE
    }
    assert {(res["kind"], res["metadata"]["name"]) for res in rendered} == expected
    for resource in rendered:
        assert validate(resource, KUBERNETES_VERSION, strict=True) == KUBERNETES_VERSION
        if resource["kind"] != "Namespace":
            assert resource["metadata"]["namespace"] == NAMESPACE
    assert {res["metadata"]["name"] for res in rendered if res["kind"] == "Namespace"} == {
        NAMESPACE
    }


# --- how the resources fit together ------------------------------------------------------------


def test_there_is_one_deployment_per_service_running_its_image() -> None:
    deployments = of_kind("Deployment")
    assert set(deployments) == set(SERVICES)
    retagged = {image["name"] for image in kustomization()["images"]}
    for name, deployment in deployments.items():
        image = container_of(deployment)["image"]
        repository, _, tag = image.partition(":")
        assert repository == f"darkroom-{name}"
        assert tag and tag != "latest", f"{name}: image {image!r} needs a pinned tag"
        assert repository in retagged


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_pods_run_as_non_root_without_privileges(name: str) -> None:
    deployment = of_kind("Deployment")[name]
    pod = deployment["spec"]["template"]["spec"]
    container = container_of(deployment)
    assert pod["securityContext"]["runAsNonRoot"] is True
    # A numeric user lets the kubelet check runAsNonRoot before starting the container; it
    # is the user the image creates, so the files the image owns stay readable.
    user = pod["securityContext"]["runAsUser"]
    assert user > 0
    dockerfile = (ROOT / "services" / name / "Dockerfile").read_text()
    created = re.search(r"useradd\b[^\n]*--uid (\d+)", dockerfile)
    if created is not None:
        assert user == int(created.group(1))
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_selects_its_deployment_and_targets_a_container_port(name: str) -> None:
    service = of_kind("Service")[name]
    selector: dict[str, str] = service["spec"]["selector"]
    assert selector
    selected = [
        deployment
        for deployment in of_kind("Deployment").values()
        if selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert [deployment["metadata"]["name"] for deployment in selected] == [name]
    deployment = selected[0]
    # The Deployment's own selector must select its pods too, or it is refused.
    match_labels = deployment["spec"]["selector"]["matchLabels"]
    assert match_labels.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    ports = container_of(deployment)["ports"]
    for port in service["spec"]["ports"]:
        target = port.get("targetPort", port["port"])
        key = "name" if isinstance(target, str) else "containerPort"
        assert any(p.get(key) == target for p in ports), f"{name}: no container port {target}"


def test_processor_service_is_headless_on_the_container_port() -> None:
    """Clients reach processor pods by their addresses: no port mapping in between."""
    service = of_kind("Service")["processor"]
    assert service["spec"]["clusterIP"] == "None"
    (port,) = service["spec"]["ports"]
    (container_port,) = container_of(of_kind("Deployment")["processor"])["ports"]
    assert port["port"] == container_port["containerPort"]
    url = resolved_env(of_kind("Deployment")["gateway"])["GATEWAY_PROCESSOR_URL"]
    assert url == f"http://processor:{port['port']}"


def test_gateway_reaches_the_catalog_through_its_service() -> None:
    (port,) = of_kind("Service")["catalog"]["spec"]["ports"]
    url = resolved_env(of_kind("Deployment")["gateway"])["GATEWAY_CATALOG_URL"]
    assert url == f"http://catalog:{port['port']}"


def test_autoscaler_scales_the_processor_deployment_on_cpu() -> None:
    autoscaler = only("HorizontalPodAutoscaler")
    assert autoscaler["apiVersion"] == "autoscaling/v2"
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "Deployment",
        "processor",
    )
    assert "processor" in of_kind("Deployment")
    (metric,) = autoscaler["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert 1 <= autoscaler["spec"]["minReplicas"] < autoscaler["spec"]["maxReplicas"]
    # Utilization is measured against the request: without one the HPA cannot act.
    requests = container_of(of_kind("Deployment")["processor"])["resources"]["requests"]
    assert quantity(requests["cpu"]) > 0


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_env_vars_are_settings_of_their_service(name: str) -> None:
    known = set(env_names(SERVICES[name]))
    env = resolved_env(of_kind("Deployment")[name])
    assert env
    assert set(env) <= known, f"{name}: not settings: {sorted(set(env) - known)}"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_settings_accept_the_values_the_manifests_give(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each service's Settings reads its pod's environment without a validation error."""
    service = SERVICES[name]
    env = resolved_env(of_kind("Deployment")[name])
    for var in list(os.environ):
        if var.startswith(service.prefix) or var in env_names(service):
            monkeypatch.delenv(var)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    settings = service.settings()
    fields = env_names(service)
    for var, value in env.items():
        read = getattr(settings, fields[var])
        if isinstance(read, str):
            assert read == value
        elif isinstance(read, int | float) and not isinstance(read, bool):
            assert read == float(value)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_key_refs_name_keys_that_exist(name: str) -> None:
    deployment = of_kind("Deployment")[name]
    config_map = only("ConfigMap")
    secret = only("Secret")
    for var, ref in key_refs(deployment, "configMapKeyRef"):
        assert ref["name"] == config_map["metadata"]["name"], var
        assert ref["key"] in config_map["data"], f"{var}: no key {ref['key']} in the ConfigMap"
    for var, ref in key_refs(deployment, "secretKeyRef"):
        assert ref["name"] == secret["metadata"]["name"], var
        assert ref["key"] in secret["stringData"], f"{var}: no key {ref['key']} in the Secret"


def test_every_config_map_key_is_used() -> None:
    used = {
        ref["key"]
        for deployment in of_kind("Deployment").values()
        for _, ref in key_refs(deployment, "configMapKeyRef")
    }
    assert set(only("ConfigMap")["data"]) == used


def test_secret_template_holds_placeholders_and_documents_every_required_key() -> None:
    secret = only("Secret")
    for key, value in secret["stringData"].items():
        assert not value or "REPLACE_WITH_" in value or "USER:PASSWORD@" in value, key
    required = {
        ref["key"]
        for deployment in of_kind("Deployment").values()
        for _, ref in key_refs(deployment, "secretKeyRef")
        if not ref.get("optional", False)
    }
    documented = set(re.findall(r"--from-literal=([a-z-]+)=", (K8S / SECRET_TEMPLATE).read_text()))
    assert required <= documented
    assert documented <= set(secret["stringData"])
    store = resolved_env(of_kind("Deployment")["catalog"])["CATALOG_STORE"]
    assert store.startswith("mongodb://")


@pytest.mark.parametrize(
    ("name", "probe"),
    [(name, probe) for name in sorted(SERVICES) for probe in ("livenessProbe", "readinessProbe")],
)
def test_probe_paths_are_routes_the_service_serves(name: str, probe: str, tmp_path: Path) -> None:
    """The kubelet's GET reaches a route: liveness answers 200, readiness is not a 404/405."""
    container = container_of(of_kind("Deployment")[name])
    check = container[probe]["httpGet"]
    assert check["port"] in {port["name"] for port in container["ports"]}
    with TestClient(SERVICES[name].app(tmp_path)) as client:
        response = client.get(check["path"])
    if probe == "livenessProbe":
        assert response.status_code == 200, response.text
    else:
        assert response.status_code not in (404, 405), f"{name} serves no GET {check['path']}"


def test_processor_is_sized_by_its_limits() -> None:
    """Jobs match the CPU limit (os.cpu_count() sees the node); memory is given back early."""
    deployment = of_kind("Deployment")["processor"]
    limits = container_of(deployment)["resources"]["limits"]
    env = resolved_env(deployment)
    assert int(env["PROCESSOR_MAX_JOBS"]) == quantity(limits["cpu"]) + 1
    soft_limit = int(env["PROCESSOR_MEMORY_SOFT_LIMIT_MB"]) * 2**20
    assert 0 < soft_limit <= quantity(limits["memory"]) / 2


def test_gateway_memory_holds_its_caches() -> None:
    deployment = of_kind("Deployment")["gateway"]
    resources = container_of(deployment)["resources"]
    env = resolved_env(deployment)
    caches = int(env["GATEWAY_CACHE_MAX_BYTES"]) + int(env["GATEWAY_ORIGINALS_MAX_BYTES"])
    assert quantity(resources["requests"]["memory"]) > caches
    assert quantity(resources["limits"]["memory"]) >= 2 * caches


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_requests_fit_within_limits(name: str) -> None:
    resources = container_of(of_kind("Deployment")[name])["resources"]
    for kind in ("cpu", "memory"):
        assert 0 < quantity(resources["requests"][kind]) <= quantity(resources["limits"][kind])
