"""deploy/kubernetes without a cluster: the Kubernetes schemas, then what must hold together.

No cluster can run here, so each manifest is validated offline against the OpenAPI schemas
kubernetes-validate bundles (strict: unknown fields are errors), for the oldest Kubernetes we
document and the newest it knows; then the manifests are tied to dataflows/multi.yml, the
key layout dora_zmq reads and the image of deploy/Dockerfile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dora_zmq.descriptor import load_dataflow

from ._compose import MULTI_YML, REPO

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate is not installed (pip install -e '.[dev]')"
)

KUSTOMIZE = REPO / "deploy" / "kubernetes"
# The oldest version deploy/README.md names; the newest is whatever the package bundles.
VERSIONS = ["1.27.0", kubernetes_validate.latest_version()]


def _resources() -> list[tuple[Path, dict[str, Any]]]:
    kustomization = yaml.safe_load((KUSTOMIZE / "kustomization.yaml").read_text())
    found = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((KUSTOMIZE / name).read_text()):
            found.append((KUSTOMIZE / name, doc))
    return found


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in _resources() if doc["kind"] == kind}


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _dora_pods() -> dict[str, dict[str, Any]]:
    pods = {name: d["spec"]["template"]["spec"] for name, d in _by_kind("Deployment").items() if name != "jaeger"}
    pods.update({name: d["spec"]["template"]["spec"] for name, d in _by_kind("Job").items()})
    return pods


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_matches_the_kubernetes_schemas(version: str) -> None:
    resources = _resources()
    assert {doc["kind"] for _, doc in resources} == {"Deployment", "Service", "Job"}
    for path, doc in resources:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.name}: {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_schema_check_rejects_a_typo() -> None:
    # The check has teeth: a misspelt field is rejected in strict mode.
    job = next(doc for _, doc in _resources() if doc["kind"] == "Job")
    job["spec"]["template"]["spec"]["restartPolicyy"] = "Never"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, VERSIONS[-1], strict=True)


def test_one_daemon_per_machine_placed_by_node_label_advertising_its_pod_ip() -> None:
    machines = load_dataflow(MULTI_YML).machines()
    daemons = {name: d for name, d in _by_kind("Deployment").items() if name.startswith("daemon-")}
    assert set(daemons) == {f"daemon-{m}" for m in machines}
    for machine in machines:
        deployment = daemons[f"daemon-{machine}"]
        assert deployment["spec"]["replicas"] == 1
        pod = deployment["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"dora-machine": machine}
        (container,) = pod["containers"]
        command = container["command"]
        assert command[:2] == ["dora-zmq", "daemon"]
        assert command[command.index("--machine-id") + 1] == machine
        assert command[command.index("--advertise") + 1] == "$(POD_IP)"
        assert command[command.index("--bind-data") + 1] == "0.0.0.0"
        assert _env(container)["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}


def test_the_coordinator_service_is_what_every_client_dials() -> None:
    service = _by_kind("Service")["coordinator"]
    port = service["spec"]["ports"][0]["port"]
    assert _by_kind("Deployment")["coordinator"]["spec"]["replicas"] == 1
    for name, pod in _dora_pods().items():
        for container in _containers(pod):
            command = container["command"]
            env = _env(container)
            target = (
                command[command.index("--coordinator") + 1]
                if "--coordinator" in command
                else env.get("DORA_ZMQ_COORDINATOR")
            )
            if command[:2] != ["dora-zmq", "coordinator"]:
                assert target == f"tcp://coordinator:{port}", (name, container["name"])


def test_start_job_runs_the_dataflow_once_from_the_mounted_folder() -> None:
    job = _by_kind("Job")["start"]
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (start,) = pod["containers"]
    assert start["command"][:3] == ["dora-zmq", "start", "/app/dataflows/multi.yml"] and "--attach" in start["command"]


def test_dataflow_configmap_carries_every_file_at_its_path() -> None:
    # multi.yml runs node scripts relative to its folder: every file of dataflows/multi must be
    # at the same relative path under the mount, on the daemons and where `start` reads the YAML.
    wanted = {"multi.yml", *(f"multi/{p.name}" for p in (REPO / "dataflows" / "multi").glob("*.py"))}
    for name, pod in _dora_pods().items():
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in _containers(pod):
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            if name == "coordinator":
                continue
            items = volumes[mounts["/app/dataflows"]]["configMap"]["items"]
            assert {i["path"] for i in items} == wanted, name
            assert all(i["key"] == Path(i["path"]).name for i in items), name


def test_curve_keys_come_from_the_secret_in_the_layout_dora_zmq_reads() -> None:
    for name, pod in _dora_pods().items():
        assert pod["securityContext"]["runAsUser"] == 1000 and pod["securityContext"]["fsGroup"] == 1000, name
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in _containers(pod):
            assert _env(container)["DORA_ZMQ_KEYS"] == "/keys", (name, container["name"])
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            secret = volumes[mounts["/keys"]]["secret"]
            assert secret["secretName"] == "dora-zmq-keys"
            assert secret["defaultMode"] & 0o007 == 0, "key files must not be world-readable"
            paths = {i["path"] for i in secret["items"]}
            # Every process needs the server's public key and its own client pair; listeners
            # (coordinator, daemons) also the server secret and the authorised keys.
            assert {"server.key", "clients/default.key_secret"} <= paths, name
            if name != "start":
                assert {"server.key_secret", "authorized/default.key"} <= paths, name


def test_images_are_the_deploy_image_and_jaeger_v2() -> None:
    kustomization = yaml.safe_load((KUSTOMIZE / "kustomization.yaml").read_text())
    assert [i["name"] for i in kustomization["images"]] == ["dora-zmq"]
    for name, pod in _dora_pods().items():
        assert {c["image"] for c in _containers(pod)} == {"dora-zmq"}, name
    (jaeger,) = _by_kind("Deployment")["jaeger"]["spec"]["template"]["spec"]["containers"]
    repo, _, version = jaeger["image"].partition(":")
    assert repo == "jaegertracing/jaeger" and version.startswith("2."), jaeger["image"]
    for pod in _dora_pods().values():
        for container in _containers(pod):
            assert _env(container)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
