"""Reading and writing the files of a registry version folder, with nothing executable in them.

A version folder holds JSON (the model card and a layout file) and one ``weights.safetensors``:
tensors only, no pickle. The card records the weight file's size and sha256; the loader reads
the file once, checks both, and only then parses it. Every problem is a ``RegistryError``
(a ``ValueError``) naming the file; a missing file is a ``MissingModelFile``, which is also a
``FileNotFoundError``.

A version whose card says ``"smoke": true`` (``swarm-ray train --smoke``: a tiny budget that
checks the pipeline) is never served: loading it raises ``SmokeModel`` naming it, unless its
registry is a scratch registry (a ``scratch_registry.json`` beside the model folders, written by
the first smoke export into it), where tests load smoke models on purpose.

The sha256 catches a truncated, corrupted or swapped weight file. It is not a signature: who can
write the folder can write a matching card too. What keeps such a person from running code in
every replica is the format, since nothing in a version folder is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CARD = "model_card.json"
SCRATCH_MARK = "scratch_registry.json"
WEIGHTS_FILE = "weights.safetensors"
WEIGHTS_FORMAT = "safetensors"
# far above any model of this project (the DQN policies are ~60 kB); refused before reading
MAX_WEIGHTS_BYTES = 256 * 1024 * 1024


class RegistryError(ValueError):
    """A registry file that is invalid, inconsistent with its card, or of another format."""


class MissingModelFile(RegistryError, FileNotFoundError):
    """A file a version folder must hold is not there."""


class SmokeModel(RegistryError):
    """A smoke-test version asked for from a serving registry."""


def is_scratch_registry(models_dir: str | Path) -> bool:
    """Whether ``models_dir`` is a scratch registry (smoke-test models, loaded on purpose)."""
    return (Path(models_dir) / SCRATCH_MARK).is_file()


def mark_scratch_registry(models_dir: str | Path) -> None:
    root = Path(models_dir)
    root.mkdir(parents=True, exist_ok=True)
    note = {
        "scratch": True,
        "about": "smoke-test models (swarm-ray train --smoke): they check the pipeline and are "
        "never a serving registry's versions",
    }
    (root / SCRATCH_MARK).write_text(json.dumps(note, indent=2) + "\n")


def check_servable(version_dir: str | Path, card: Mapping[str, Any]) -> None:
    """Raise ``SmokeModel`` for a smoke-test version outside a scratch registry."""
    vdir = Path(version_dir)
    if card.get("smoke") is True and not is_scratch_registry(vdir.parent.parent):
        raise SmokeModel(
            f"{vdir}: {vdir.parent.name} {vdir.name} is a smoke-test model (smoke: true in its "
            f"model card) and is never served; delete that folder (smoke runs export to a "
            f"scratch registry) or name a version trained in full"
        )


def servable_dir(models_dir: str | Path, name: str, version: str | None) -> Path:
    """The folder of ``name``'s ``version`` (``None``: the model has no version); ``SmokeModel``
    if it is a smoke-test model in a serving registry. A missing or broken card is left for
    the loader to name."""
    if version is None:
        raise FileNotFoundError(f"no version of model {name!r} under {models_dir}")
    vdir = Path(models_dir) / name / version
    try:
        card = read_card(vdir)
    except RegistryError:
        return vdir
    check_servable(vdir, card)
    return vdir


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``; ``what`` names the file's role in errors."""
    if not path.is_file():
        raise MissingModelFile(f"{path}: no {what}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError(f"{path}: the {what} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: the {what} must be a JSON object, not {type(data).__name__}")
    return data


def read_card(version_dir: str | Path) -> dict[str, Any]:
    """The model card of a version folder."""
    return read_json(Path(version_dir) / CARD, "model card")


def write_card(version_dir: str | Path, card: dict[str, Any]) -> Path:
    path = Path(version_dir) / CARD
    path.write_text(json.dumps(card, indent=2, sort_keys=False, default=str) + "\n")
    return path


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def card_section(card: Mapping[str, Any], key: str, card_path: Path) -> dict[str, Any]:
    """``card[key]``, which must be a JSON object."""
    section = card.get(key)
    if not isinstance(section, dict):
        raise RegistryError(
            f"{card_path}: no {key!r} object in the model card (a model exported in an older "
            f"format must be exported again)"
        )
    return section


def write_weights(version_dir: str | Path, tensors: Mapping[str, Any]) -> dict[str, Any]:
    """Write torch tensors to ``weights.safetensors``; returns the card's ``weights`` entry."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    data = save(state)
    (Path(version_dir) / WEIGHTS_FILE).write_bytes(data)
    return {
        "file": WEIGHTS_FILE,
        "format": WEIGHTS_FORMAT,
        "bytes": len(data),
        "sha256": sha256_of(data),
    }


def read_weights(
    version_dir: str | Path, card: Mapping[str, Any], expected: Mapping[str, tuple[int, ...]]
) -> dict[str, Any]:
    """The float32 torch tensors of a version folder, after checking them against its card.

    ``expected`` maps every tensor name the network needs to its shape; the file must hold
    exactly those. Size and sha256 are checked on the bytes before they are parsed.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load

    vdir = Path(version_dir)
    card_path = vdir / CARD
    entry = card_section(card, "weights", card_path)
    if entry.get("file") != WEIGHTS_FILE or entry.get("format", WEIGHTS_FORMAT) != WEIGHTS_FORMAT:
        raise RegistryError(
            f"{card_path}: weights must be {WEIGHTS_FILE!r} in {WEIGHTS_FORMAT} format, "
            f"the card names {entry.get('file')!r} ({entry.get('format')!r})"
        )
    want_sha = entry.get("sha256")
    want_size = entry.get("bytes")
    if not isinstance(want_sha, str) or len(want_sha) != 64:
        raise RegistryError(f"{card_path}: no sha256 of {WEIGHTS_FILE} in the model card")
    path = vdir / WEIGHTS_FILE
    if not path.is_file():
        raise MissingModelFile(f"{path}: no weight file")
    size = path.stat().st_size
    if size > MAX_WEIGHTS_BYTES:
        raise RegistryError(f"{path}: {size} bytes, more than a registry model may have")
    if isinstance(want_size, int) and size != want_size:
        raise RegistryError(
            f"{path}: {size} bytes where the model card records {want_size} (truncated or replaced)"
        )
    data = path.read_bytes()
    got_sha = sha256_of(data)
    if got_sha != want_sha.lower():
        raise RegistryError(
            f"{path}: sha256 {got_sha} does not match the model card's {want_sha}; "
            f"refusing to load it"
        )
    try:
        tensors = load(data)
    except SafetensorError as exc:
        raise RegistryError(f"{path}: not a valid safetensors file ({exc})") from None
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise RegistryError(
            f"{path}: tensors do not match the architecture in the model card "
            f"(missing {missing or 'none'}, unexpected {extra or 'none'})"
        )
    for name, shape in expected.items():
        t = tensors[name]
        if tuple(t.shape) != tuple(shape) or t.dtype != torch.float32:
            raise RegistryError(
                f"{path}: tensor {name!r} is {t.dtype} {tuple(t.shape)}, "
                f"the architecture in the model card needs float32 {tuple(shape)}"
            )
        if not torch.isfinite(t).all():
            raise RegistryError(f"{path}: tensor {name!r} holds a nan or inf")
    return tensors


@contextmanager
def staged_version(dest: Path) -> Iterator[Path]:
    """A scratch folder next to ``dest`` that becomes ``dest`` when the block ends.

    Its name is no version name, so a loader looking for the newest version never sees a
    half-written one. An existing ``dest`` is replaced; on an error nothing is left behind.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        yield stage
        os.chmod(stage, 0o755)
        if dest.exists():
            shutil.rmtree(dest)
        stage.rename(dest)
    finally:
        if stage.exists():
            shutil.rmtree(stage)
