"""Write the KubeRay CRD schemas the manifest tests validate against (run by hand, not a test).

    python tests/unit/deploy/schemas/vendor.py KUBERAY_CHECKOUT [--ref v1.7.0]

Reads ``ray-operator/config/crd/bases/ray.io_{rayjobs,rayservices,rayclusters}.yaml`` at the
git ref ``--ref`` of a ray-project/kuberay checkout, takes each CRD's ``v1`` openAPIV3Schema
and writes it here unchanged except for one trim: the Kubernetes ``PodTemplateSpec`` schema
(about 68 kB, repeated for the head group, each worker group and the RayJob's submitter pod) and
the ``RayClusterSpec`` schema (repeated in RayJob and RayService) are written once and referred
to with ``$ref``. Then update SOURCE.md with the ref and commit printed at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
CRDS = "ray-operator/config/crd/bases/ray.io_{}.yaml"
POD_TEMPLATE = "pod-template-spec.json"
CLUSTER_SPEC = "raycluster-spec.json"


def _git(checkout: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(checkout), *args], check=True, capture_output=True, text=True
    ).stdout


def _v1_schema(checkout: Path, ref: str, plural: str) -> dict[str, Any]:
    crd = yaml.safe_load(_git(checkout, "show", f"{ref}:{CRDS.format(plural)}"))
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return version["schema"]["openAPIV3Schema"]


def _replace(node: Any, target: dict[str, Any], ref: str) -> Any:
    """``node`` with every subtree equal to ``target`` replaced by ``{"$ref": ref}``."""
    if node == target:
        return {"$ref": ref}
    if isinstance(node, dict):
        return {k: _replace(v, target, ref) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace(v, target, ref) for v in node]
    return node


def _write(name: str, schema: dict[str, Any]) -> None:
    (HERE / name).write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkout", type=Path, help="a git clone of ray-project/kuberay")
    ap.add_argument("--ref", default="v1.7.0", help="tag or commit to read (default v1.7.0)")
    args = ap.parse_args()

    job = _v1_schema(args.checkout, args.ref, "rayjobs")
    service = _v1_schema(args.checkout, args.ref, "rayservices")
    cluster = _v1_schema(args.checkout, args.ref, "rayclusters")
    cluster_spec = cluster["properties"]["spec"]
    pod_template = cluster_spec["properties"]["headGroupSpec"]["properties"]["template"]

    _write(POD_TEMPLATE, pod_template)
    _write(CLUSTER_SPEC, _replace(cluster_spec, pod_template, POD_TEMPLATE))
    for name, schema in (("rayjob.json", job), ("rayservice.json", service)):
        trimmed = _replace(_replace(schema, cluster_spec, CLUSTER_SPEC), pod_template, POD_TEMPLATE)
        _write(name, trimmed)
    commit = _git(args.checkout, "rev-parse", f"{args.ref}^{{commit}}").strip()
    print(f"ray-project/kuberay {args.ref} = {commit}")


if __name__ == "__main__":
    main()
