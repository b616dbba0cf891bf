"""Loading from the registry runs no code from the models folder: a planted pickle is ignored
or refused (and never unpickled), a weight file must match its card's sha256, and a broken
version folder is refused with an error naming the file."""

from __future__ import annotations

import builtins
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from swarm_ray.registry import (
    MissingModelFile,
    RegistryError,
    load_analysis_model,
    load_policies,
    load_policy,
)
from swarm_ray.registry.files import sha256_of
from tests.conftest import ROOT

MODELS = ROOT / "models"
PLANTED = (
    "rl_module/class_and_ctor_args.pkl",
    "rl_module/module_state.pkl",
    "module_state.pkl",
    "weights.pt",
    "model.pkl",
)


class Payload:
    """Unpickling this creates ``marker``: the code a crafted file would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    for name in ("risk_manager", "market_analyst"):
        shutil.copytree(MODELS / name / "v1", root / name / "v1")
    return root


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "code-ran"


@pytest.fixture
def crafted(marker: Path) -> bytes:
    """A pickle that creates ``marker`` when unpickled (checked on a probe marker)."""
    probe = marker.with_name("probe-ran")
    pickle.loads(pickle.dumps(Payload(probe))).close()
    assert probe.exists()
    return pickle.dumps(Payload(marker))


@pytest.fixture
def no_unpickling(crafted: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any unpickler (pickle's or torch.load's) fails the test if the loader reaches it."""
    import torch

    def forbidden(*args, **kwargs):
        raise AssertionError("the registry loader tried to unpickle something")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)


def plant(vdir: Path, data: bytes) -> None:
    for rel in PLANTED:
        (vdir / rel).parent.mkdir(parents=True, exist_ok=True)
        (vdir / rel).write_bytes(data)
    (vdir / "rl_module" / "metadata.json").write_text(
        json.dumps({"class_and_ctor_args_file": "class_and_ctor_args.pkl"})
    )


def new_version(registry: Path, name: str, version: str = "v2") -> Path:
    """A copy of v1 as ``version`` (the newest), with a card naming it."""
    vdir = registry / name / version
    shutil.copytree(registry / name / "v1", vdir)
    card = json.loads((vdir / "model_card.json").read_text())
    (vdir / "model_card.json").write_text(json.dumps({**card, "version": version}))
    return vdir


def set_card(vdir: Path, **fields) -> None:
    card = json.loads((vdir / "model_card.json").read_text())
    (vdir / "model_card.json").write_text(json.dumps({**card, **fields}))


def test_pickles_planted_in_the_newest_version_are_never_unpickled(
    registry: Path, marker: Path, crafted: bytes, no_unpickling: None
) -> None:
    from serve.models import load_served_model

    for name in ("risk_manager", "market_analyst"):
        plant(new_version(registry, name), crafted)
    (policy,) = load_policies(registry)
    assert policy.version == "v2"
    assert policy.q_values(np.zeros((2, 15), np.float32)).shape == (2, 7)
    assert load_analysis_model(registry).version == "v2"
    for name in ("risk_manager", "market_analyst"):
        assert load_served_model(registry, name).version == "v2"
    assert not marker.exists()


@pytest.mark.parametrize("name", ["risk_manager", "market_analyst"])
def test_a_pickle_as_the_weight_file_is_refused(
    registry: Path, marker: Path, crafted: bytes, no_unpickling: None, name: str
) -> None:
    vdir = new_version(registry, name)
    data = crafted
    (vdir / "weights.safetensors").write_bytes(data)

    def load():
        return load_policy(vdir) if name == "risk_manager" else load_analysis_model(registry)

    # the card still records the real file: size (and sha256) differ
    with pytest.raises(RegistryError, match=r"weights\.safetensors: .*bytes"):
        load()
    # a card rewritten to match the pickle: the sha256 passes, the format does not
    set_card(vdir, weights={**_weights_entry(vdir), "bytes": len(data), "sha256": sha256_of(data)})
    with pytest.raises(RegistryError, match=r"weights\.safetensors: not a valid safetensors"):
        load()
    assert not marker.exists()


def _weights_entry(vdir: Path) -> dict:
    return json.loads((vdir / "model_card.json").read_text())["weights"]


def test_an_old_format_folder_of_rllib_pickles_is_refused_and_serving_keeps_v1(
    registry: Path, marker: Path, crafted: bytes, no_unpickling: None
) -> None:
    """A version folder as RLlib writes it (pickled module class and state), no weights entry
    in its card: refused, and a server asked for the newest version keeps serving v1."""
    from serve.models import ModelServer

    server = ModelServer(registry, "risk_manager", 8, 0.0)
    server.configure({"version": None})
    assert server.model.version == "v1"
    vdir = registry / "risk_manager" / "v2"
    vdir.mkdir()
    card = json.loads((registry / "risk_manager" / "v1" / "model_card.json").read_text())
    del card["architecture"], card["weights"]
    (vdir / "model_card.json").write_text(json.dumps({**card, "version": "v2"}))
    shutil.copy(registry / "risk_manager" / "v1" / "observation_layout.json", vdir)
    plant(vdir, crafted)
    with pytest.raises(RegistryError, match=r"v2/model_card\.json: no 'architecture'"):
        load_policies(registry)
    with pytest.raises(RegistryError, match=r"model_card\.json"):
        server.configure({"version": None})
    assert server.model.version == "v1"
    server.check_health()
    assert not marker.exists()


def test_a_changed_byte_fails_the_sha256_check(registry: Path) -> None:
    vdir = new_version(registry, "risk_manager")
    weights = vdir / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01  # inside a tensor: still a valid file of the same size
    weights.write_bytes(bytes(data))
    with pytest.raises(RegistryError, match=r"v2/weights\.safetensors: sha256 .* does not match"):
        load_policy(vdir)
    # the same tensors again: loads
    shutil.copy(registry / "risk_manager" / "v1" / "weights.safetensors", weights)
    assert load_policy(vdir).version == "v2"


def test_a_truncated_weight_file_is_refused_naming_it(registry: Path) -> None:
    vdir = new_version(registry, "market_analyst")
    weights = vdir / "weights.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(RegistryError, match=r"safetensors: \d+ bytes where .* \(truncated"):
        load_analysis_model(registry)
    # also when the card agrees with the cut file: safetensors finds it incomplete
    cut = weights.read_bytes()
    set_card(vdir, weights={**_weights_entry(vdir), "bytes": len(cut), "sha256": sha256_of(cut)})
    with pytest.raises(RegistryError, match=r"v2/weights\.safetensors: not a valid safetensors"):
        load_analysis_model(registry)


def _rewrite_tensors(vdir: Path, change) -> None:
    from safetensors.torch import load, save

    tensors = load((vdir / "weights.safetensors").read_bytes())
    change(tensors)
    data = save(tensors)
    (vdir / "weights.safetensors").write_bytes(data)
    set_card(vdir, weights={**_weights_entry(vdir), "bytes": len(data), "sha256": sha256_of(data)})


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda t: t.update({"af.net.mlp.2.bias": t["af.net.mlp.2.bias"][:5].clone()}), "(5,)"),
        (lambda t: t.pop("vf.net.mlp.2.weight"), "missing ['vf.net.mlp.2.weight']"),
        (lambda t: t.update(extra=t["af.net.mlp.2.bias"].clone()), "unexpected ['extra']"),
        (lambda t: t.update({"af.net.mlp.2.bias": t["af.net.mlp.2.bias"].double()}), "float64"),
        (lambda t: t["af.net.mlp.2.bias"].fill_(float("nan")), "nan"),
    ],
    ids=["wrong-shape", "missing", "extra", "dtype", "nan"],
)
def test_tensors_that_do_not_fit_the_card_are_refused(registry: Path, change, words) -> None:
    vdir = new_version(registry, "risk_manager")
    _rewrite_tensors(vdir, change)
    with pytest.raises(RegistryError) as err:
        load_policy(vdir)
    assert "v2/weights.safetensors" in str(err.value) and words in str(err.value)


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        ({"architecture": {"network": "pickle"}}, "architecture network is 'pickle'"),
        ({"architecture": "dqn"}, "no 'architecture' object"),
        ({"weights": None}, "no 'weights' object"),
        (
            {"weights": {"file": "../v1/weights.safetensors"}},
            "weights must be 'weights.safetensors'",
        ),
        ({"weights": {"file": "weights.pt", "format": "torch"}}, "weights must be"),
        ({"weights": {"file": "weights.safetensors", "bytes": 57080}}, "no sha256"),
        ({"kind": "pickled_module"}, "is not a dqn_policy"),
    ],
    ids=["network", "architecture", "weights", "path", "format", "sha", "kind"],
)
def test_a_card_that_does_not_describe_a_safe_model_is_refused(
    registry: Path, edit: dict, words: str
) -> None:
    vdir = new_version(registry, "risk_manager")
    set_card(vdir, **edit)
    with pytest.raises(RegistryError) as err:
        load_policy(vdir)
    assert "v2/model_card.json" in str(err.value) and words in str(err.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("activation", "gelu"),
        ("hiddens", [64, -1]),
        ("hiddens", []),
        ("n_actions", "7"),
        ("dueling", "yes"),
    ],
)
def test_an_architecture_field_out_of_range_is_refused(
    registry: Path, field: str, value: object
) -> None:
    vdir = new_version(registry, "risk_manager")
    arch = json.loads((vdir / "model_card.json").read_text())["architecture"]
    set_card(vdir, architecture={**arch, field: value})
    with pytest.raises(RegistryError, match=rf"v2/model_card\.json: architecture {field}"):
        load_policy(vdir)


def test_a_missing_or_unreadable_card_or_layout_is_named(registry: Path) -> None:
    vdir = new_version(registry, "risk_manager")
    (vdir / "model_card.json").write_text("{not json")
    with pytest.raises(RegistryError, match=r"v2/model_card\.json: the model card is not valid"):
        load_policy(vdir)
    (vdir / "model_card.json").write_text("[1, 2]")
    with pytest.raises(RegistryError, match="must be a JSON object"):
        load_policy(vdir)
    (vdir / "model_card.json").unlink()
    with pytest.raises(MissingModelFile, match=r"v2/model_card\.json: no model card") as err:
        load_policy(vdir)
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, ValueError)
    shutil.copy(registry / "risk_manager" / "v1" / "model_card.json", vdir)
    (vdir / "observation_layout.json").write_text(json.dumps({"columns": ["a"]}))
    with pytest.raises(RegistryError, match=r"v2/observation_layout\.json: observation columns"):
        load_policy(vdir)
    (vdir / "weights.safetensors").unlink()
    shutil.copy(registry / "risk_manager" / "v1" / "observation_layout.json", vdir)
    with pytest.raises(MissingModelFile, match=r"v2/weights\.safetensors: no weight file"):
        load_policy(vdir)
    layout = registry / "market_analyst" / "v1" / "feature_layout.json"
    layout.write_text(json.dumps({**json.loads(layout.read_text()), "std": [0.0] * 20}))
    with pytest.raises(RegistryError, match=r"feature_layout\.json: 'std' must be positive"):
        load_analysis_model(registry)


def test_a_half_written_export_is_never_the_newest_version(registry: Path) -> None:
    """An export writes into a scratch folder that only becomes ``vN`` when complete."""
    from swarm_ray.registry.files import staged_version
    from swarm_ray.registry.policies import latest_dir, versions

    dest = registry / "risk_manager" / "v2"
    with pytest.raises(RuntimeError), staged_version(dest) as stage:
        shutil.copy(registry / "risk_manager" / "v1" / "model_card.json", stage)
        assert versions(registry, "risk_manager") == ["v1"]
        raise RuntimeError("export interrupted")
    assert latest_dir(registry, "risk_manager").name == "v1"
    assert sorted(p.name for p in (registry / "risk_manager").iterdir()) == ["v1"]
