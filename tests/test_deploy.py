"""Static checks of ``deploy/``: the image, the Ray launcher configs, the Kubernetes manifests, the scripts.

Nothing here builds an image or talks to a cluster (the proof on this machine
is tests/test_cluster.py). What is checked:

* Kubernetes core objects validate against the upstream schemas shipped in
  the ``kubernetes-validate`` package (strict: unknown fields are errors), for
  the oldest and newest Kubernetes versions it has; the KubeRay objects
  validate against ``deploy/k8s/schemas/`` (written from the KubeRay v1 API
  types), whose pod templates are checked by the same upstream schemas;
* the Ray launcher configs pass Ray's own validation (``prepare_config`` +
  ``validate_config``, the code ``ray up`` runs);
* the moving parts agree: one image name and tag everywhere (the package
  version), the same commands in manifests, configs and docs, the secrets the
  manifests read exist in the example and the script that creates them;
* the security rules: credentials only from Secrets or files, never literal;
  the dashboard on the read-only role; every pod non-root with no privilege
  escalation; nothing exposed outside the cluster; the image's user is not root.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
import yaml
from conftest import require_tool
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from store_fixtures import postgres_url  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
DOCS = REPO / "docs" / "cluster.md"
SCRIPT = DEPLOY / "local" / "cluster.sh"
VERSION = metadata.version("nas-platform")
IMAGE = f"nas-platform:{VERSION}"
CUDA_IMAGE = f"nas-platform-cuda:{VERSION}"
SECRET_ENV = re.compile(r"(STORAGE|PASSWORD|TOKEN|SECRET)", re.IGNORECASE)
URL_WITH_PASSWORD = re.compile(r"://[^/@\s:'\"]+:[^/@\s'\"]+@")

sys.path.insert(0, str(DEPLOY / "local"))
import dburls  # noqa: E402

# -- loading -------------------------------------------------------------------------------------------


def kustomize_resources(directory: Path) -> list[Path]:
    """Files a kustomization includes, following directory bases (as `kubectl apply -k` does)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    files: list[Path] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        files.extend(kustomize_resources(path) if path.is_dir() else [path])
    return files


def generated_files(directory: Path) -> list[Path]:
    """Files that configMapGenerators turn into ConfigMaps, following directory bases."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    found = [
        (directory / f).resolve() for g in kustomization.get("configMapGenerator", []) for f in g["files"]
    ]
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            found.extend(generated_files(path))
    return found


@functools.cache
def _parsed_objects() -> str:
    docs = []
    for path in kustomize_resources(K8S):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return json.dumps(docs)


def objects() -> list[dict[str, Any]]:
    """The objects `kubectl apply -k deploy/k8s` creates (a fresh copy: tests may change it)."""
    return json.loads(_parsed_objects())


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [o for o in objects() if o["kind"] == kind]


def one(kind: str) -> dict[str, Any]:
    (found,) = of_kind(kind)
    return found


def pod_templates() -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, pod template) for every pod the manifests make, KubeRay's included."""
    for obj in objects():
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        spec = obj.get("spec", {})
        if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield name, spec["template"]
        elif obj["kind"] == "RayCluster":
            yield f"{name}/head", spec["headGroupSpec"]["template"]
            for group in spec["workerGroupSpecs"]:
                yield f"{name}/{group['groupName']}", group["template"]
        elif obj["kind"] == "RayJob":
            yield f"{name}/submitter", spec["submitterPodTemplate"]


def containers() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, pod spec, container) for every container of every pod."""
    for where, template in pod_templates():
        pod = template["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            yield f"{where}/{container['name']}", pod, container


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def app_name(template: dict[str, Any]) -> str:
    return template["metadata"]["labels"]["app.kubernetes.io/name"]


# -- schemas -------------------------------------------------------------------------------------------


def require_kubernetes_validate() -> Any:
    """The kubernetes-validate package (upstream schemas); a skip with the reason without it, a failure in CI."""
    try:
        import kubernetes_validate
    except ImportError:
        message = "the upstream Kubernetes schemas need `pip install kubernetes-validate` (test extra)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; it is missing in CI, where these tests must not skip")
        pytest.skip(message)
    return kubernetes_validate


def k8s_versions() -> list[str]:
    """The oldest and the newest Kubernetes minor version kubernetes-validate has schemas for."""
    try:
        from kubernetes_validate.utils import all_versions, major_minor
    except ImportError:
        return ["unavailable"]  # the tests then skip (or fail in CI) through require_kubernetes_validate
    versions = sorted({major_minor(v) for v in all_versions()}, key=lambda v: tuple(map(int, v.split("."))))
    return [versions[0], versions[-1]]


@functools.cache
def kubernetes_definitions(version: str) -> dict[str, Any]:
    require_kubernetes_validate()
    from kubernetes_validate.utils import all_versions, major_minor

    (full,) = {v for v in all_versions() if major_minor(v) == version}
    path = resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{full}-local-strict"
    return json.loads((path / "_definitions.json").read_text())


def crd_validator(kind: str, version: str) -> jsonschema.Draft202012Validator:
    """A validator for our KubeRay schema of ``kind``, resolving Kubernetes types from the upstream ones."""
    definitions = kubernetes_definitions(version)
    ours = {p.name: json.loads(p.read_text()) for p in (K8S / "schemas").glob("*.json")}
    registry = referencing.Registry().with_resources(
        [(definitions["$id"], referencing.Resource.from_contents(definitions))]
        + [(schema["$id"], referencing.Resource.from_contents(schema)) for schema in ours.values()]
    )
    schema = ours[f"{kind.lower()}.json"]
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=registry)


# -- kustomization ---------------------------------------------------------------------------------------


def test_every_manifest_is_in_the_kustomization_and_every_listed_file_exists() -> None:
    listed = set(kustomize_resources(K8S)) | set(generated_files(K8S))
    assert all(p.is_file() for p in listed), [str(p) for p in listed if not p.is_file()]
    not_applied = {"kustomization.yaml", "secret.example.yaml"}
    on_disk = {
        p.resolve() for d in (K8S, DEPLOY / "postgres") for p in d.glob("*.yaml") if p.name not in not_applied
    }
    assert on_disk <= listed, sorted(str(p) for p in on_disk - listed)
    assert (K8S / "secret.example.yaml").resolve() not in listed  # examples are never applied


@pytest.mark.parametrize("version", k8s_versions())
def test_kubernetes_objects_validate_against_the_upstream_schemas(version: str) -> None:
    kubernetes_validate = require_kubernetes_validate()
    checked = 0
    for obj in objects():
        if obj["apiVersion"].startswith("ray.io/"):
            continue
        kubernetes_validate.validate(obj, version, strict=True)
        checked += 1
    assert checked >= 9


@pytest.mark.parametrize("version", k8s_versions())
@pytest.mark.parametrize("kind", ["RayCluster", "RayJob"])
def test_kuberay_objects_validate_against_their_schemas(kind: str, version: str) -> None:
    errors = list(crd_validator(kind, version).iter_errors(one(kind)))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def _head_container(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize(
    ("kind", "break_it", "expected"),
    [
        ("RayCluster", lambda o: o["spec"].update(workerGroupSpec=[]), "workerGroupSpec"),
        ("RayCluster", lambda o: o["spec"]["workerGroupSpecs"][0].pop("maxReplicas"), "maxReplicas"),
        ("RayCluster", lambda o: _head_container(o).update(imagee="x"), "imagee"),
        ("RayCluster", lambda o: _head_container(o)["resources"].update(limits={"cpu": []}), "cpu"),
        ("RayJob", lambda o: o["spec"].update(rayClusterSpec={"headGroupSpec": {}}), "oneOf"),
        ("RayJob", lambda o: o["spec"].update(submissionMode="Batch"), "Batch"),
    ],
    ids=["unknown-field", "missing-max", "container-typo", "bad-quantity", "two-clusters", "bad-mode"],
)
def test_kuberay_schemas_reject_broken_objects(
    kind: str, break_it: Callable[[dict[str, Any]], object], expected: str
) -> None:
    obj = one(kind)
    break_it(obj)
    errors = list(crd_validator(kind, k8s_versions()[-1]).iter_errors(obj))
    assert errors
    described = [f"{e.message} {e.validator} {list(e.absolute_path)}" for e in errors]
    assert any(expected in d for d in described), described


def test_kubectl_renders_the_kustomization_with_the_platform_images() -> None:
    kubectl = require_tool("kubectl", "the kustomization is still checked file by file")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"nas"}
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"} >= {"nas-search-config"}
    assert set(re.findall(r"image: (\S+)", rendered)) == {IMAGE, CUDA_IMAGE, postgres_image()}


# -- images and commands agree -------------------------------------------------------------------------


def postgres_image() -> str:
    return one("StatefulSet")["spec"]["template"]["spec"]["containers"][0]["image"]


def test_one_platform_image_and_version_everywhere() -> None:
    images = {container["image"] for _, _, container in containers()}
    assert images == {IMAGE, CUDA_IMAGE, postgres_image()}
    assert re.fullmatch(r"postgres:\d+\.\d+-\w+", postgres_image())  # pinned to a minor release
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert {(i["name"], i["newTag"]) for i in kustomization["images"]} == {
        ("nas-platform", VERSION),
        ("nas-platform-cuda", VERSION),
    }
    dockerfile = (DEPLOY / "docker" / "Dockerfile").read_text()
    docs = DOCS.read_text()
    for image in (IMAGE, CUDA_IMAGE):
        assert f"-t {image} ." in dockerfile and f"-t {image} ." in docs
    for config in ("onprem.yaml", "aws.yaml"):
        text = (DEPLOY / "ray" / config).read_text()
        assert all(tag.endswith(f":{VERSION}") for tag in re.findall(r"nas-platform[\w-]*:\S+", text))


def test_the_rayjob_runs_nas_search_on_the_mounted_config() -> None:
    job, cluster = one("RayJob"), one("RayCluster")
    entrypoint = job["spec"]["entrypoint"].split()
    assert entrypoint[:2] == ["nas", "search"]
    config_path = Path(entrypoint[2])
    selector = job["spec"]["clusterSelector"]
    assert selector.items() <= cluster["metadata"]["labels"].items()  # the job finds this cluster
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]
    (mount,) = [m for m in head["containers"][0]["volumeMounts"] if m["mountPath"] == str(config_path.parent)]
    (volume,) = [v for v in head["volumes"] if v["name"] == mount["name"]]
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    (generator,) = [
        g for g in kustomization["configMapGenerator"] if g["name"] == volume["configMap"]["name"]
    ]
    assert generator["files"] == [config_path.name]
    assert f"nas search {config_path}" in DOCS.read_text()


def test_the_cluster_search_config_is_valid_and_leaves_storage_to_the_environment() -> None:
    from nas.settings import load_config

    config = load_config(K8S / "search.yaml")
    assert config.storage is None  # $NAS_STORAGE from the Secret decides
    assert config.budget.concurrent > 1


def test_the_database_jobs_run_the_platform_commands() -> None:
    jobs = {j["metadata"]["name"]: j["spec"]["template"]["spec"]["containers"][0] for j in of_kind("Job")}
    assert jobs["nas-db-upgrade"]["command"] == ["nas", "db", "upgrade"]
    role = jobs["nas-db-readonly-role"]
    assert role["command"][0] == "psql" and "/sql/readonly-role.sql" in role["command"]
    assert "nas db upgrade" in DOCS.read_text()


def test_ray_cluster_shape_head_drives_workers_train() -> None:
    spec = one("RayCluster")["spec"]
    assert spec["enableInTreeAutoscaling"] is True
    # The cluster runs the Ray of the image's lock, which lies in the range pyproject.toml pins.
    assert spec["rayVersion"] == locked_version("ray")
    assert ray_requirement().specifier.contains(spec["rayVersion"]), (spec["rayVersion"], ray_requirement())
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"  # the driver only
    assert "NAS_STORAGE" in env_of(head["template"]["spec"]["containers"][0])
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}
    for group in groups.values():
        assert group["minReplicas"] <= group.get("replicas", 0) <= group["maxReplicas"]
        assert group["minReplicas"] < group["maxReplicas"]  # autoscaled
        (worker,) = group["template"]["spec"]["containers"]
        assert "NAS_STORAGE" not in env_of(worker)  # workers never see the database
    gpu = groups["gpu"]["template"]["spec"]["containers"][0]
    assert gpu["image"] == CUDA_IMAGE
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in groups["cpu"]["template"]["spec"]["containers"][0]["resources"]["limits"]


# -- security -------------------------------------------------------------------------------------------


def test_ray_token_authentication_everywhere() -> None:
    cluster = one("RayCluster")
    ray_containers = [(w, c) for w, _, c in containers() if w.startswith(("RayCluster", "RayJob"))]
    ray_containers.append(("autoscaler", cluster["spec"]["autoscalerOptions"]))
    assert len(ray_containers) == 5
    for where, container in ray_containers:
        env = env_of(container)
        assert env["RAY_AUTH_MODE"]["value"] == "token", where
        reference = env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
        assert reference == {"name": "nas-ray-token", "key": "auth_token"}, where


def test_credentials_come_only_from_secrets() -> None:
    for where, _, container in containers():
        for name, var in env_of(container).items():
            if SECRET_ENV.search(name):
                assert "value" not in var and "secretKeyRef" in var.get("valueFrom", {}), f"{where}: {name}"
    for path in kustomize_resources(K8S) + generated_files(K8S):
        assert not URL_WITH_PASSWORD.search(path.read_text()), path
    assert not of_kind("Secret") and not of_kind("ConfigMap")  # Secrets are never part of the manifests


def test_every_secret_key_read_is_documented_and_created() -> None:
    example = {
        d["metadata"]["name"]: d["stringData"]
        for d in yaml.safe_load_all((K8S / "secret.example.yaml").read_text())
    }
    for values in example.values():
        assert all("CHANGE-ME" in value for value in values.values())  # placeholders only
    script = (K8S / "create-secrets.sh").read_text()
    references = {
        (var["valueFrom"]["secretKeyRef"]["name"], var["valueFrom"]["secretKeyRef"]["key"])
        for _, _, container in containers()
        for var in env_of(container).values()
        if "secretKeyRef" in var.get("valueFrom", {})
    }
    assert len(references) >= 5
    for name, key in references:
        assert key in example[name], (name, key)
        assert f"apply_secret {name}" in script and f"\n{key}=" in script, (name, key)


def test_the_dashboard_reads_through_the_read_only_role() -> None:
    deployment = one("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["nas", "dashboard"]
    ref = env_of(container)["NAS_STORAGE"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "nas-db", "key": "dashboard-storage-url"}
    example = (K8S / "secret.example.yaml").read_text()
    assert "dashboard-storage-url: postgresql+psycopg://nas_dashboard:" in example
    (role_job,) = [j for j in of_kind("Job") if j["metadata"]["name"] == "nas-db-readonly-role"]
    assert "ro_user=nas_dashboard" in role_job["spec"]["template"]["spec"]["containers"][0]["command"]


def test_every_pod_meets_the_restricted_pod_security_standard() -> None:
    for where, pod, container in containers():
        pod_sc, sc = pod.get("securityContext", {}), container.get("securityContext", {})
        assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
        assert sc.get("runAsUser", pod_sc.get("runAsUser", 1)) != 0, where
        assert sc.get("allowPrivilegeEscalation") is False, where
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
        assert sc.get("seccompProfile", pod_sc.get("seccompProfile")) == {"type": "RuntimeDefault"}, where
        assert not sc.get("privileged"), where
        assert all("hostPort" not in port for port in container.get("ports", [])), where
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), where
        assert all("hostPath" not in v for v in pod.get("volumes", [])), where


def test_nothing_is_exposed_outside_the_cluster() -> None:
    for service in of_kind("Service"):
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", service["metadata"]["name"]
    assert one("RayCluster")["spec"]["headGroupSpec"]["serviceType"] == "ClusterIP"
    assert not of_kind("Ingress")


def test_only_database_clients_may_reach_postgres() -> None:
    policy = one("NetworkPolicy")
    postgres = one("StatefulSet")["spec"]["template"]
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": app_name(postgres)}
    (rule,) = policy["spec"]["ingress"]
    (source,) = rule["from"]
    (expression,) = source["podSelector"]["matchExpressions"]
    assert (expression["key"], expression["operator"]) == ("app.kubernetes.io/name", "In")
    clients, others = set(), set()
    for _, template in pod_templates():
        if template is postgres or app_name(template) == app_name(postgres):
            continue
        env = {name for c in template["spec"]["containers"] for name in env_of(c)}
        (clients if env & {"NAS_STORAGE", "PGPASSWORD"} else others).add(app_name(template))
    assert clients == set(expression["values"])
    assert {"nas-ray-worker", "nas-ray-gpu-worker", "nas-search-submitter"} <= others


# -- image ---------------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "docker" / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_image_runs_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    final_stage = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    users = [arg for op, arg in instructions[final_stage:] if op == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")
    assert "--uid 1000" in (DEPLOY / "docker" / "Dockerfile").read_text()


def test_the_image_installs_only_pinned_packages() -> None:
    installs = [arg for op, arg in dockerfile_instructions() if op == "RUN" and "pip install" in arg]
    torch = [i for i in installs if "torch" in i]
    assert len(torch) == 2 and all("torch==2.13.0" in i for i in torch)
    assert sum("--index-url https://download.pytorch.org/whl/cpu" in i for i in torch) == 1
    for command in installs:
        if "torch" not in command:
            assert "--requirement /tmp/requirements.lock" in command or "--no-deps" in command, command


def locked_version(name: str) -> str:
    """The version ``deploy/docker/requirements.lock`` pins for ``name``."""
    for line in (DEPLOY / "docker" / "requirements.lock").read_text().splitlines():
        pinned, _, version = line.partition("==")
        if canonicalize_name(pinned) == canonicalize_name(name):
            return version
    raise AssertionError(f"{name} is not pinned in requirements.lock")


def ray_requirement() -> Requirement:
    """pyproject.toml's Ray requirement (the ``ray`` extra): the range the tests pass on."""
    for line in metadata.requires("nas-platform") or []:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == "ray":
            return requirement
    raise AssertionError("pyproject.toml names no ray requirement")


def test_the_installed_ray_is_the_pinned_one() -> None:
    ray = pytest.importorskip("ray")
    assert ray_requirement().specifier.contains(ray.__version__), (ray.__version__, ray_requirement())


def test_the_lock_pins_every_dependency_within_pyproject_ranges() -> None:
    lock = (DEPLOY / "docker" / "requirements.lock").read_text().splitlines()
    pins = {}
    for line in (line for line in lock if line and not line.startswith("#")):
        name, _, version = line.partition("==")
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+", name) and re.fullmatch(r"[0-9][0-9A-Za-z.+!\-]*", version), (
            line
        )
        pins[canonicalize_name(name)] = version
    assert "torch" not in pins
    wanted = [Requirement(line) for line in metadata.requires("nas-platform") or []]
    runtime = [
        r
        for r in wanted
        if r.marker is None
        or any(r.marker.evaluate({"extra": e}) for e in ("ray", "postgres", "dashboard", "export"))
    ]
    assert len(runtime) >= 15
    for requirement in runtime:
        name = canonicalize_name(requirement.name)
        if name in ("torch", "nas-platform"):
            continue
        assert name in pins, f"{name} is not in the lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (str(requirement), pins[name])


def test_the_build_context_leaves_out_stores_and_environments() -> None:
    ignore = (DEPLOY / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
    assert "*" in ignore  # deny by default, then allow what the image copies
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert not allowed & {".venv", "nas.db", "nas_artifacts", ".git"}
    copied = {source for op, arg in dockerfile_instructions() if op == "COPY" for source in arg.split()[:-1]}
    assert copied and copied <= allowed, copied - allowed


# -- Ray cluster launcher ----------------------------------------------------------------------------------


@pytest.fixture(params=["onprem.yaml", "aws.yaml"])
def launcher(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param, yaml.safe_load((DEPLOY / "ray" / request.param).read_text())


def test_launcher_configs_pass_rays_validation(launcher: tuple[str, dict[str, Any]]) -> None:
    pytest.importorskip("ray")
    from ray.autoscaler._private.util import prepare_config, validate_config

    _, config = launcher
    prepared = prepare_config(json.loads(json.dumps(config)))
    validate_config(prepared)
    assert prepared["cluster_name"] == "nas"


def test_launcher_configs_use_token_auth_and_keep_the_store_on_the_head(
    launcher: tuple[str, dict[str, Any]],
) -> None:
    name, config = launcher
    head = " ".join(config["head_start_ray_commands"])
    worker = " ".join(config["worker_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head and "RAY_AUTH_MODE=token" in worker
    assert any(remote.endswith(".ray/auth_token") for remote in config["file_mounts"])
    assert "--dashboard-host=127.0.0.1" in head  # the job API through `ray dashboard`'s SSH tunnel only
    assert "--head" in head and "--autoscaling-config=~/ray_bootstrap_config.yaml" in head
    (url,) = re.findall(r"NAS_STORAGE='([^']+)'", head)
    assert dburls.postgres_url(url).password is None  # the password is in the head's ~/.pgpass
    assert "NAS_STORAGE" not in worker
    text = (DEPLOY / "ray" / name).read_text()
    assert not URL_WITH_PASSWORD.search(text)
    assert f"ray up deploy/ray/{name}" in text


def test_onprem_installs_the_platform_at_pinned_versions() -> None:
    config = yaml.safe_load((DEPLOY / "ray" / "onprem.yaml").read_text())
    setup = " ".join(config["setup_commands"])
    assert "torch==2.13.0" in setup
    assert "--requirement ~/nas-platform/deploy/docker/requirements.lock" in setup
    assert "--no-deps ~/nas-platform" in setup
    assert config["file_mounts"]["~/nas-platform"] == "."
    assert config["provider"]["type"] == "local" and config["provider"]["worker_ips"]


def test_aws_runs_the_image_with_a_driver_only_head_and_gpu_workers() -> None:
    config = yaml.safe_load((DEPLOY / "ray" / "aws.yaml").read_text())
    assert config["docker"]["image"].endswith(f"/{IMAGE}")
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"] == {"CPU": 0}
    assert types["gpu"]["docker"]["worker_image"].endswith(f"/{CUDA_IMAGE}")
    assert types["cpu"]["min_workers"] < types["cpu"]["max_workers"]


# -- local cluster script -----------------------------------------------------------------------------------


@pytest.mark.parametrize("script", [SCRIPT, K8S / "create-secrets.sh"], ids=lambda p: p.name)
def test_scripts_parse_and_are_executable(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert os.access(script, os.X_OK)


def test_cluster_script_refuses_to_start_without_a_postgres_store(tmp_path: Path) -> None:
    env = {**os.environ, "NAS_CLUSTER_DIR": str(tmp_path / "c"), "PYTHON": sys.executable}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    env.pop("NAS_STORAGE", None)
    missing = subprocess.run(["bash", str(SCRIPT), "up"], env=env, capture_output=True, text=True)
    assert missing.returncode != 0 and "set NAS_STORAGE" in missing.stderr
    env["NAS_STORAGE"] = f"sqlite:///{tmp_path / 'x.db'}"
    sqlite = subprocess.run(["bash", str(SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=60)
    assert sqlite.returncode != 0 and "is not PostgreSQL" in sqlite.stderr
    assert not (tmp_path / "c" / "head.pid").exists()
    env["NAS_STORAGE"] = "postgresql+psycopg://nas@127.0.0.1:1/never-contacted"
    env["NAS_RAY_TMP"] = str(tmp_path / ("x" * 40))
    too_long = subprocess.run(
        ["bash", str(SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=60
    )
    assert too_long.returncode != 0 and "set NAS_RAY_TMP" in too_long.stderr
    assert not (tmp_path / "c" / "head.pid").exists()
    usage = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True)
    assert usage.returncode != 0 and "usage:" in usage.stderr


def test_cluster_script_env_names_the_token_file_not_the_token(tmp_path: Path) -> None:
    env = {**os.environ, "NAS_CLUSTER_DIR": str(tmp_path), "RAY_DASHBOARD_PORT": "8391"}
    printed = subprocess.run(
        ["bash", str(SCRIPT), "env"], env=env, capture_output=True, text=True, check=True
    )
    exports = dict(re.findall(r"export (\w+)=(\S+)", printed.stdout))
    assert exports == {
        "RAY_ADDRESS": "http://127.0.0.1:8391",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(tmp_path / "auth_token"),
    }


def test_dburls_turns_the_owner_url_into_psql_settings_and_a_readonly_url() -> None:
    url = "postgresql+psycopg://nas:p%40ss@db.example.org:5433/store?options=-csearch_path%3Dlab&connect_timeout=5"
    assert dburls.libpq_environment(url) == {
        "PGHOST": "db.example.org",
        "PGPORT": "5433",
        "PGUSER": "nas",
        "PGPASSWORD": "p@ss",
        "PGDATABASE": "store",
        "PGOPTIONS": "-csearch_path=lab",
        "PGCONNECT_TIMEOUT": "5",
    }
    assert dburls.schema_of(url) == "lab"
    assert dburls.schema_of("postgresql://nas@db/store") == "public"
    readonly = dburls.make_url(dburls.readonly_url(url, "nas_dashboard", "r/o pw"))
    assert (readonly.username, readonly.password, readonly.host, readonly.database) == (
        "nas_dashboard",
        "r/o pw",
        "db.example.org",
        "store",
    )
    assert readonly.query["options"] == "-csearch_path=lab"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: dburls.schema_of("sqlite:///nas.db"), "is not PostgreSQL"),
        (lambda: dburls.readonly_url("postgresql://a@h/d", "Robert'); DROP", "x"), "not allowed"),
        (lambda: dburls.readonly_url("postgresql://a@h/d", "nas_dashboard", ""), "non-empty password"),
    ],
    ids=["sqlite", "bad-role", "no-password"],
)
def test_dburls_refuses_what_it_cannot_use(call: Callable[[], object], message: str) -> None:
    from nas.core.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        call()


def test_dburls_writes_the_readonly_url_for_its_owner_only(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2\n")
    out = tmp_path / "url"
    env = {**os.environ, "NAS_STORAGE": "postgresql+psycopg://nas:owner@127.0.0.1:5432/nas"}
    written = subprocess.run(
        [sys.executable, str(DEPLOY / "local" / "dburls.py"), "readonly-url", "--user", "nas_ro"]
        + ["--password-file", str(secret), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert written.returncode == 0, written.stderr
    assert "hunter2" not in written.stdout + written.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    assert out.read_text().strip() == "postgresql+psycopg://nas_ro:hunter2@127.0.0.1:5432/nas"


# -- the read-only role ------------------------------------------------------------------------------------


def test_readonly_role_sql_grants_nothing_but_reading() -> None:
    sql = (DEPLOY / "postgres" / "readonly-role.sql").read_text()
    statements = [line for line in sql.splitlines() if line.strip() and not line.lstrip().startswith("--")]
    grants = [line for line in statements if re.match(r"\s*(GRANT|ALTER DEFAULT PRIVILEGES)", line)]
    assert len(grants) == 4
    for grant in grants:
        match = re.search(r"GRANT (.+?) ON", grant)
        assert match and match.group(1) in ("SELECT", "USAGE", "CONNECT"), grant
    assert "default_transaction_read_only = on" in sql
    assert "\\getenv ro_password NAS_DASHBOARD_DB_PASSWORD" in sql  # the password never on a command line


@pytest.mark.postgres
def test_readonly_role_reads_tables_created_later_and_writes_nothing(postgres_url: str) -> None:  # noqa: F811
    from sqlalchemy.exc import ProgrammingError

    from nas.store.testing import run_sql, temporary_schema

    require_tool("psql", "the read-only role script is run by the PostgreSQL client")
    role = f"nas_ro_{os.urandom(5).hex()}"
    with temporary_schema(postgres_url) as url:
        schema = dburls.schema_of(url)
        run_sql(url, "CREATE TABLE before_role (x int); INSERT INTO before_role VALUES (1)")
        env = {**os.environ, **dburls.libpq_environment(url), "NAS_DASHBOARD_DB_PASSWORD": "pw-in-env"}
        command = ["psql", "-X", "-v", f"ro_user={role}", "-v", f"schema={schema}"]
        command += ["-f", str(DEPLOY / "postgres" / "readonly-role.sql")]
        try:
            applied = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
            assert applied.returncode == 0, applied.stderr
            assert "pw-in-env" not in applied.stdout + applied.stderr
            run_sql(url, "CREATE TABLE after_role (x int); INSERT INTO after_role VALUES (2)")
            readonly = dburls.readonly_url(url, role, "pw-in-env")
            assert run_sql(readonly, "SELECT x FROM before_role") == [(1,)]
            assert run_sql(readonly, "SELECT x FROM after_role") == [(2,)]  # default privileges
            for statement in (
                "SET TRANSACTION READ WRITE; INSERT INTO after_role VALUES (3)",
                "SET TRANSACTION READ WRITE; CREATE TABLE mine (x int)",
            ):
                with pytest.raises(ProgrammingError, match="permission denied"):
                    run_sql(readonly, statement)
            again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
            assert again.returncode == 0, again.stderr  # idempotent
            no_password = {k: v for k, v in env.items() if k != "NAS_DASHBOARD_DB_PASSWORD"}
            refused = subprocess.run(command, env=no_password, capture_output=True, text=True, timeout=60)
            assert refused.returncode != 0 and "NAS_DASHBOARD_DB_PASSWORD" in refused.stderr
        finally:
            if run_sql(postgres_url, "SELECT 1 FROM pg_roles WHERE rolname = :r", {"r": role}):
                run_sql(postgres_url, f'DROP OWNED BY "{role}"')
                run_sql(postgres_url, f'DROP ROLE "{role}"')


# -- docs ------------------------------------------------------------------------------------------------


def test_docs_name_only_files_that_exist_and_the_commands_they_run() -> None:
    docs = DOCS.read_text()
    paths = set(re.findall(r"\b((?:deploy|examples|docs|tests)/[\w./-]*\w)", docs))
    assert len(paths) > 10
    missing = [p for p in paths if not (REPO / p).exists()]
    assert not missing, missing
    for command in (
        "deploy/local/cluster.sh up",
        "ray job submit",
        "kubectl apply -k deploy/k8s",
        "deploy/k8s/create-secrets.sh",
        "ray up deploy/ray/onprem.yaml",
        "nas dashboard",
        "nas export",
    ):
        assert command in docs, command
