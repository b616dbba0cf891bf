"""Where outputs go: one storage root for journals, the paper account, the model registry and
training results.

The root is the first of:

1. ``SWARM_RAY_STORAGE`` in the environment (the deployment's setting: the same config file runs
   on a laptop and on a cluster);
2. ``storage:`` in the config file;
3. the working directory. Inside a Ray job's working-dir package (``ray job submit
   --working-dir``, a temporary ``.../runtime_resources/working_dir_files/_ray_pkg_*`` folder
   deleted with the job) there is no default: a relative output path is refused.

A root is a local path (``~`` expanded, made absolute) or a URI such as ``s3://bucket/swarm`` or
``gs://bucket/swarm``, as Ray's own ``storage_path``; ``file:///path`` is the local path.

An absolute path in a config stays as it is; a relative one is under the root:

- :meth:`StorageRoot.local_path`: an output that needs a POSIX filesystem (an SQLite journal,
  the paper account's state, the model registry). A URI root is refused for it, naming the field:
  give that field an absolute path on a (shared) filesystem instead.
- :meth:`StorageRoot.results`: Ray Tune's ``storage_path``, which may be a URI (Tune opens it
  with ``pyarrow.fs``).
- :meth:`StorageRoot.registry`: the model registry read for inference. With no root set it is
  looked up in the working directory, then the repository (which ships one).

Resolution happens once, on the driver, where the config is loaded; actors get the absolute
paths (on several nodes, the same path must mean the same folder: a shared filesystem).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from swarm_ray.core.config import PROJECT_ROOT, ConfigError

__all__ = [
    "ENV_VAR",
    "StorageError",
    "StorageRoot",
    "check_uri",
    "in_ray_job_package",
    "is_uri",
    "storage_root",
]

ENV_VAR = "SWARM_RAY_STORAGE"

# the file systems pyarrow.fs.FileSystem.from_uri opens (what Ray Tune's storage_path accepts)
URI_SCHEMES = frozenset({"s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss", "file"})
_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class StorageError(ConfigError):
    """An output path that cannot be used where it would go; the message names the field."""


def is_uri(value: str | os.PathLike[str]) -> bool:
    """Whether ``value`` is a URI (``scheme://...``) rather than a path."""
    return bool(_URI.match(str(value)))


def _file_uri_path(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.netloc not in ("", "localhost"):
        raise StorageError(f"{uri}: a file:// URI names a path on this machine, not a host")
    return unquote(parsed.path)


def in_ray_job_package(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` lies in a Ray job's working-dir package (deleted with the job)."""
    parts = Path(path).parts
    if any(p.startswith("_ray_pkg_") for p in parts):
        return True
    return any(a == "runtime_resources" and b == "working_dir_files" for a, b in pairwise(parts))


@dataclass(frozen=True)
class StorageRoot:
    """The resolved root: ``location`` is an absolute local path or a URI."""

    location: str
    source: str
    """Where it came from: ``SWARM_RAY_STORAGE``, ``storage`` (the config) or the working dir."""
    job_package: bool = False
    """No root is set and the working directory is a Ray job's package: relative outputs are
    refused there."""

    @property
    def explicit(self) -> bool:
        """Set by ``SWARM_RAY_STORAGE`` or the config (not the working-directory default)."""
        return self.source != "working directory"

    @property
    def is_uri(self) -> bool:
        return is_uri(self.location)

    def describe(self) -> str:
        return f"{self.location} (from {self.source})"

    def _relative(self, value: str, field: str) -> PurePosixPath:
        if self.job_package:
            raise StorageError(
                f"{field}: {value!r} is relative, and this runs in a Ray job's temporary "
                f"working dir ({self.location}), deleted with the job: set {ENV_VAR} (in the "
                f"runtime env's env_vars) or `storage:` in the config to a folder every node "
                f"can write"
            )
        return PurePosixPath(value)

    def local_path(self, value: str | os.PathLike[str], field: str) -> str:
        """An output that must be a POSIX path (SQLite, the registry), made absolute."""
        value = str(value)
        if is_uri(value):
            if not value.startswith("file://"):
                raise StorageError(
                    f"{field}: {value} is an object store, and this needs a POSIX path (SQLite "
                    f"files, the model registry): give a local or shared-filesystem path"
                )
            return str(Path(_file_uri_path(value)))
        p = Path(value).expanduser()
        if p.is_absolute():
            return str(p)
        rel = self._relative(value, field)
        if self.is_uri:
            raise StorageError(
                f"{field}: {value!r} would go under the storage root {self.describe()}, an "
                f"object store, and this needs a POSIX path (SQLite files, the model registry): "
                f"give {field} an absolute path on a shared filesystem, or make the root one"
            )
        return str(Path(self.location) / rel)

    def results(self, value: str | os.PathLike[str], field: str) -> str:
        """An output that may be a URI (Ray Tune's ``storage_path``): absolute path or URI."""
        value = str(value)
        if is_uri(value):
            check_uri(value, field)
            return str(Path(_file_uri_path(value))) if value.startswith("file://") else value
        p = Path(value).expanduser()
        if p.is_absolute():
            return str(p)
        rel = self._relative(value, field)
        if self.is_uri:
            return f"{self.location.rstrip('/')}/{rel.as_posix()}"
        return str(Path(self.location) / rel)

    def registry(self, value: str | os.PathLike[str], field: str = "models_dir") -> Path:
        """A model registry to read (an input, so also fine in a job's package): absolute as
        given; relative under an explicit root, else the working directory's if it exists,
        else the repository's (the shipped registry)."""
        value = str(value)
        p = Path(value).expanduser()
        if self.explicit or is_uri(value) or p.is_absolute():
            # file:// and absolute paths as given; a URI root or value is refused, naming it
            return Path(self.local_path(value, field))
        here = Path(self.location) / p
        if here.exists() or not (PROJECT_ROOT / p).exists():
            return here
        return PROJECT_ROOT / p


def check_uri(uri: str, field: str) -> None:
    """Refuse a URI whose scheme ``pyarrow.fs`` cannot open (checked offline)."""
    m = _URI.match(uri)
    scheme = m.group(1).lower() if m else ""
    if scheme not in URI_SCHEMES:
        known = ", ".join(f"{s}://" for s in sorted(URI_SCHEMES))
        raise StorageError(f"{field}: {uri} is not a storage URI (one of {known})")
    parsed = urlparse(uri)
    if parsed.username or parsed.password:  # it would reach logs and the job's runtime env
        raise StorageError(
            f"{field}: a storage URI must not carry credentials; give them to the file "
            "system through its own environment (e.g. AWS_ACCESS_KEY_ID)"
        )


def storage_root(
    configured: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> StorageRoot:
    """The storage root: ``SWARM_RAY_STORAGE``, else ``configured`` (the config's
    ``storage``), else the working directory (refusing relative outputs in a Ray job's
    package)."""
    env = os.environ if environ is None else environ
    here = Path(cwd) if cwd is not None else Path.cwd()
    job_package = in_ray_job_package(here)
    for value, source in (
        (env.get(ENV_VAR, "").strip(), ENV_VAR),
        ((configured or "").strip(), "storage"),
    ):
        if not value:
            continue
        if is_uri(value):
            check_uri(value, source)
            if value.startswith("file://"):
                return StorageRoot(_file_uri_path(value), source)
            return StorageRoot(value, source)
        p = Path(value).expanduser()
        if not p.is_absolute() and job_package:
            raise StorageError(
                f"{source}: {value!r} is relative, and this runs in a Ray job's temporary "
                f"working dir ({here}), deleted with the job: give an absolute path"
            )
        return StorageRoot(str(p if p.is_absolute() else here / p), source)
    return StorageRoot(str(here), "working directory", job_package=job_package)
