"""The KubeRay manifests under ``deploy/kuberay``: valid against KubeRay's own CRD schemas (strict,
as ``kubectl apply`` validates fields), token auth through the operator, keys from Secrets only,
the storage root on the shared volume, and entrypoints, configs and the Serve app that exist here.

No cluster and no Ray start: the schemas are vendored (``schemas/SOURCE.md``).
"""

from __future__ import annotations

import copy
import importlib
import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy" / "kuberay"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
IMAGE = "swarm-ray:0.1.0"
IMAGE_HOME = "/home/ray/swarm-ray"  # the Dockerfile's WORKDIR: the project root in the image
TOKEN_SECRET = "swarm-ray-ray-token"
KEYS_SECRET = "swarm-ray-binance"
STORAGE_ENV = "SWARM_RAY_STORAGE"
SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD", re.IGNORECASE)
SCHEMA_OF = {"RayJob": "rayjob.json", "RayService": "rayservice.json"}


# ------------------------------------------------------------------------------ helpers


def _documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


DOCUMENTS = _documents()
RAY = [(f, d) for f, d in DOCUMENTS if d.get("apiVersion") == "ray.io/v1"]
RAY_IDS = [f"{f}:{d['kind']}" for f, d in RAY]


def _strict(node: Any) -> Any:
    """The schema with unknown fields refused, as the API server's strict field validation
    does: every object schema that lists its properties and keeps no unknown fields."""
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


def _load_schema(name: str) -> dict[str, Any]:
    return _strict(json.loads((SCHEMAS / name).read_text()))


REGISTRY: Registry = Registry().with_resources(
    (name, Resource.from_contents(_load_schema(name), default_specification=DRAFT202012))
    for name in ("pod-template-spec.json", "raycluster-spec.json")
)


def _validator(kind: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_load_schema(SCHEMA_OF[kind]), registry=REGISTRY)


def _cluster_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]
    return spec["rayClusterSpec"] if doc["kind"] == "RayJob" else spec["rayClusterConfig"]


def _pod_specs(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    cluster = _cluster_spec(doc)
    yield "head", cluster["headGroupSpec"]["template"]["spec"]
    for group in cluster.get("workerGroupSpecs", []):
        yield group["groupName"], group["template"]["spec"]


def _ray_containers(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The Ray container of each pod (KubeRay's is the first)."""
    for group, pod in _pod_specs(doc):
        yield group, pod["containers"][0]


def _all_containers(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for group, pod in _pod_specs(doc):
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            yield f"{group}/{c['name']}", c


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _serve_config(doc: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(doc["spec"]["serveConfigV2"])


def _pvc() -> dict[str, Any]:
    (pvc,) = [d for _, d in DOCUMENTS if d.get("kind") == "PersistentVolumeClaim"]
    return pvc


def _pinned(package: str) -> str:
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and name.lower() == package:
            return version
    raise AssertionError(f"{package} is not pinned in constraints.txt")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


# ------------------------------------------------------------------------------ schemas


def test_deploy_holds_a_training_job_a_model_service_and_a_swarm_job() -> None:
    commands = sorted(
        shlex.split(d["spec"]["entrypoint"])[1] for _, d in RAY if "entrypoint" in d["spec"]
    )
    assert commands == ["run", "train"]  # the RayJobs
    assert [d["kind"] for _, d in RAY].count("RayService") == 1
    assert _pvc()  # and the shared volume they mount


@pytest.mark.parametrize(("file", "doc"), RAY, ids=RAY_IDS)
def test_manifest_is_valid_against_the_kuberay_crd_schema(file: str, doc: dict[str, Any]) -> None:
    errors = sorted(_validator(doc["kind"]).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(
        f"{file}: {'.'.join(map(str, e.path))}: {e.message}" for e in errors[:10]
    )


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d["spec"].update(entrypont="x"), "entrypont"),
        (lambda d: _cluster_spec(d)["headGroupSpec"].update(rayStartParams={"num-cpus": 2}), "2"),
        (lambda d: next(_ray_containers(d))[1].update(imagePullPolcy="Always"), "imagePullPolcy"),
        (lambda d: _cluster_spec(d)["authOptions"].update(mode="tokens"), "tokens"),
        (lambda d: _cluster_spec(d)["workerGroupSpecs"][0].pop("groupName"), "groupName"),
    ],
    ids=["unknown-field", "non-string-start-param", "typo-in-pod", "bad-enum", "missing-required"],
)
def test_schema_validation_catches_misspelt_mistyped_and_missing_fields(mutate, where) -> None:
    doc = copy.deepcopy(next(d for _, d in RAY if d["kind"] == "RayJob"))
    mutate(doc)
    messages = [e.message for e in _validator("RayJob").iter_errors(doc)]
    assert any(where in m for m in messages), messages


@pytest.mark.parametrize(("file", "doc"), DOCUMENTS, ids=[f for f, _ in DOCUMENTS])
def test_names_are_valid_kubernetes_names_and_keyed_lists_unique(file, doc) -> None:
    name = doc["metadata"]["name"]
    # RayCluster and Service names KubeRay derives from it must stay within 63 characters
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 40, name
    if doc.get("apiVersion") != "ray.io/v1":
        return
    for group, pod in _pod_specs(doc):
        for key in ("containers", "initContainers", "volumes"):
            names = [x["name"] for x in pod.get(key, [])]
            assert len(names) == len(set(names)), f"{file} {group} {key}: {names}"
    for where, c in _all_containers(doc):
        names = [e["name"] for e in c.get("env", [])]
        assert len(names) == len(set(names)), f"{file} {where} env: {names}"


# ------------------------------------------------------------------------------ Ray, image, auth


@pytest.mark.parametrize(("file", "doc"), RAY, ids=RAY_IDS)
def test_every_pod_runs_the_project_image_on_the_pinned_ray(file, doc) -> None:
    assert _cluster_spec(doc)["rayVersion"] == _pinned("ray")
    images = {where: c["image"] for where, c in _all_containers(doc)}
    assert set(images.values()) == {IMAGE}, images


@pytest.mark.parametrize(("file", "doc"), RAY, ids=RAY_IDS)
def test_token_auth_is_on_through_the_operator_with_a_shared_token_secret(file, doc) -> None:
    cluster = _cluster_spec(doc)
    # KubeRay (1.5.1+) sets RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (from this Secret's
    # auth_token key) on every Ray container, the wait-gcs-ready init container and the job
    # submitter; it requires rayVersion 2.52.0 or later for it
    assert cluster["authOptions"] == {"mode": "token", "secretName": TOKEN_SECRET}
    assert _version(cluster["rayVersion"]) >= (2, 52, 0)
    for where, c in _all_containers(doc):
        env = _env(c)
        assert "RAY_AUTH_TOKEN" not in env and "RAY_AUTH_MODE" not in env, f"{file} {where}"


@pytest.mark.parametrize(("file", "doc"), RAY, ids=RAY_IDS)
def test_storage_root_is_the_shared_volume_on_every_ray_container(file, doc) -> None:
    pvc = _pvc()
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]  # every node writes the same journal
    for group, pod in _pod_specs(doc):
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in pod.get("volumes", [])
            if "persistentVolumeClaim" in v
        }
        for c in [*pod.get("initContainers", []), pod["containers"][0]]:
            root = _env(c)[STORAGE_ENV]["value"]
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            assert claims.get(mounts.get(root)) == pvc["metadata"]["name"], f"{group}/{c['name']}"
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]


def _secret_values(node: Any, path: str = "") -> Iterator[str]:
    """Paths of env-like mappings in ``node`` whose secret-looking name has a literal value."""
    if isinstance(node, dict):
        if "name" in node and "value" in node and SECRET_NAME.search(str(node["name"])):
            yield f"{path}.{node['name']}"
        for k, v in node.items():
            if k in ("env_vars", "envVars") and isinstance(v, dict):
                yield from (f"{path}.{k}.{n}" for n in v if SECRET_NAME.search(n))
            yield from _secret_values(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _secret_values(v, f"{path}[{i}]")


@pytest.mark.parametrize(("file", "doc"), DOCUMENTS, ids=[f for f, _ in DOCUMENTS])
def test_no_key_secret_or_token_is_written_in_a_manifest(file, doc) -> None:
    embedded = [doc]
    if doc.get("kind") == "RayJob" and doc["spec"].get("runtimeEnvYAML"):
        embedded.append(yaml.safe_load(doc["spec"]["runtimeEnvYAML"]))
    if doc.get("kind") == "RayService":
        embedded.append(_serve_config(doc))
    assert doc.get("kind") != "Secret"
    for node in embedded:
        assert not list(_secret_values(node)), f"{file}: {list(_secret_values(node))}"
    for where, c in _all_containers(doc) if doc.get("apiVersion") == "ray.io/v1" else ():
        for name, e in _env(c).items():
            if SECRET_NAME.search(name):
                assert set(e) == {"name", "valueFrom"}, f"{file} {where} {name}"
                assert "secretKeyRef" in e["valueFrom"], f"{file} {where} {name}"


def test_only_the_swarm_gets_the_exchange_keys_on_every_ray_node() -> None:
    for file, doc in RAY:
        trades = doc["kind"] == "RayJob" and shlex.split(doc["spec"]["entrypoint"])[1] == "run"
        for group, c in _ray_containers(doc):
            env = _env(c)
            if not trades:  # training and serving need no keys, so they get none
                assert not {"BINANCE_API_KEY", "BINANCE_API_SECRET", "GROQ_API_KEY"} & set(env)
                continue
            for var in ("BINANCE_API_KEY", "BINANCE_API_SECRET"):
                ref = env[var]["valueFrom"]["secretKeyRef"]
                assert ref == {"name": KEYS_SECRET, "key": var}, f"{file} {group} {var}"
            # LLM sentiment is optional: a cluster without the Groq Secret still starts
            assert env["GROQ_API_KEY"]["valueFrom"]["secretKeyRef"]["optional"] is True


# ------------------------------------------------------------------------------ what runs


def _entrypoint_args(doc: dict[str, Any]) -> Any:
    from swarm_ray.cli import build_parser

    argv = shlex.split(doc["spec"]["entrypoint"])
    assert argv[0] == "swarm-ray", argv  # the console script the image installs
    return build_parser(only=argv[1]).parse_args(argv[1:])


JOBS = [(f, d) for f, d in RAY if d["kind"] == "RayJob"]


@pytest.mark.parametrize(("file", "doc"), JOBS, ids=[f for f, _ in JOBS])
def test_job_entrypoint_is_a_swarm_ray_command_on_a_shipped_config(file, doc) -> None:
    args = _entrypoint_args(doc)
    config = ROOT / args.config
    assert config.is_file(), f"{file}: {args.config} is not in the repository"
    if args.command == "train":
        from swarm_ray.training.config import load_train_config

        assert load_train_config(config).registry.models_dir == "models"  # under the root
    else:
        assert args.command == "run"
        from swarm_ray.commands._swarm import load_swarm_config

        cfg = load_swarm_config(str(config))
        assert cfg.exchange.kind != "paper" and not cfg.exchange.is_mainnet
        # relative, so that it lands under the storage root, on the shared volume
        assert not Path(yaml.safe_load(config.read_text())["journal_dir"]).is_absolute()


def test_model_service_serves_the_model_app_from_the_shared_registry() -> None:
    from ray.serve.schema import ServeDeploySchema

    from serve.app import APP_NAME, INGRESS_NAME
    from serve.deploy import app_args, app_config

    (doc,) = [d for _, d in RAY if d["kind"] == "RayService"]
    config = ServeDeploySchema.model_validate(_serve_config(doc))  # Serve's own schema
    app = app_config(config, APP_NAME)
    module, _, attr = app.import_path.partition(":")
    assert callable(getattr(importlib.import_module(module), attr))
    assert app.import_path == app_config(_shipped_serve_config(), APP_NAME).import_path
    # the registry the training job exports to and the init container seeds, on every node
    root = _env(next(_ray_containers(doc))[1])[STORAGE_ENV]["value"]
    assert app_args(config).models_dir == f"{root}/models"
    assert not app.runtime_env  # nothing travels in the runtime env
    known = {p.name for p in (ROOT / "models").iterdir() if p.is_dir()} | {INGRESS_NAME}
    assert {d.name for d in app.deployments} <= known
    # the Serve port the RayService's serve Service targets
    head = next(_ray_containers(doc))[1]
    assert {"name": "serve", "containerPort": 8000} in head["ports"]


def _shipped_serve_config() -> Any:
    from serve.deploy import load_deploy_config

    return load_deploy_config(ROOT / "configs" / "serve.yaml")


@pytest.mark.parametrize(("file", "doc"), RAY, ids=RAY_IDS)
def test_head_seeds_the_shared_registry_with_the_shipped_script(file, doc) -> None:
    head = dict(_pod_specs(doc))["head"]
    (init,) = [c for c in head["initContainers"] if c["name"] == "seed-registry"]
    script = init["command"][0]
    assert script.startswith(IMAGE_HOME + "/")
    in_repo = ROOT / script.removeprefix(IMAGE_HOME + "/")
    assert in_repo.is_file() and in_repo.stat().st_mode & 0o111, in_repo
    assert script.removeprefix(IMAGE_HOME + "/") in (ROOT / "Dockerfile").read_text()


def test_seed_script_copies_each_version_once_and_never_over_an_existing_one(tmp_path) -> None:
    src = tmp_path / "image" / "models"
    for model, version in (("risk_manager", "v1"), ("risk_manager", "v2"), ("analyst", "v1")):
        (src / model / version).mkdir(parents=True)
        (src / model / version / "model_card.json").write_text(f"{model} {version} shipped")
    root = tmp_path / "storage"
    trained = root / "models" / "risk_manager" / "v2"
    trained.mkdir(parents=True)
    (trained / "model_card.json").write_text("trained")

    def seed() -> str:
        return subprocess.run(
            ["sh", str(ROOT / "deploy" / "seed_registry.sh"), str(src)],
            env={"SWARM_RAY_STORAGE": str(root), "PATH": "/usr/bin:/bin"},
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    assert seed().split() == ["seeded", "analyst/v1", "seeded", "risk_manager/v1"]
    assert (trained / "model_card.json").read_text() == "trained"
    assert (root / "models" / "analyst" / "v1" / "model_card.json").read_text().endswith("shipped")
    assert seed() == ""  # a second pod finds everything in place
    assert sorted(p.name for p in (root / "models" / "risk_manager").iterdir()) == ["v1", "v2"]
