"""What a backup set holds, and the checksums that prove it arrived whole.

A backup set is a directory::

    manifest.json      this module's Manifest: version, kind, database facts, files
    SHA256SUMS         "<sha256>  <path>" per file and for manifest.json (``sha256sum -c``)
    database.dump      pg_dump custom format (kind "dump")
    base/...           a pg_basebackup data directory (kind "base")
    photos/ab/cd/...   the case photos, as stored (cases/photos.py: content-addressed)
    signing_key        the token signing key (mode 0600)

A set is written under a temporary name and renamed once complete, so a directory
holding ``manifest.json`` is a finished set. ``verify`` reads every file back against its
SHA-256 before a restore touches anything, and names each file that does not match.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from gis_service.errors import GisServiceError

FORMAT = "gis-service-backup"
VERSION = 1
MANIFEST = "manifest.json"
CHECKSUMS = "SHA256SUMS"
DUMP = "database.dump"
BASE = "base"
PHOTOS = "photos"
KEY = "signing_key"
CHUNK = 1024 * 1024

Kind = Literal["dump", "base"]


class BackupError(GisServiceError):
    """A backup could not be written, or a set cannot be restored (bad, incomplete or
    corrupted); the message names the file or the step."""

    code = "backup_invalid"


class TargetNotEmpty(GisServiceError):
    """The restore target already holds data; ``restore --force`` replaces it."""

    code = "target_not_empty"


@dataclass(frozen=True)
class FileEntry:
    """One file of a set: ``path`` relative to the set (POSIX), ``size`` in bytes,
    ``sha256`` of its bytes; ``reused`` when it is a hard link into the previous set."""

    path: str
    size: int
    sha256: str
    reused: bool = False


@dataclass
class Manifest:
    """``created_at``/``finished_at``: ISO 8601 UTC. ``database``: name, server_version,
    alembic_revision, snapshot_at (the dump's snapshot, server clock; kind "dump") or
    started_at (kind "base"), rows (table -> count within the snapshot).
    ``signing_key``: where the key came from. ``previous``: the set photos were linked from."""

    kind: Kind
    created_at: str
    finished_at: str = ""
    database: dict[str, Any] = field(default_factory=dict)
    signing_key: dict[str, Any] = field(default_factory=dict)
    previous: str | None = None
    files: list[FileEntry] = field(default_factory=list)
    format: str = FORMAT
    version: int = VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: Path) -> Manifest:
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise BackupError(f"{where} is not a gis-service backup manifest")
            if data.get("version") != VERSION:
                raise BackupError(
                    f"{where}: backup format version {data.get('version')} is not {VERSION}, "
                    "the one this gis-service reads"
                )
            files = [FileEntry(**f) for f in data.pop("files")]
            return cls(**data, files=files)
        except BackupError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise BackupError(f"{where} is not a readable backup manifest ({exc})") from None

    def by_path(self) -> dict[str, FileEntry]:
        return {f.path: f for f in self.files}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def copy_hashed(src: Path, dst: Path) -> tuple[int, str]:
    """Copy ``src`` to ``dst`` (a new file, fsynced), hashing on the way: (size, sha256)."""
    h = hashlib.sha256()
    size = 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open("rb") as fin, dst.open("xb") as fout:
        while chunk := fin.read(CHUNK):
            h.update(chunk)
            fout.write(chunk)
            size += len(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    return size, h.hexdigest()


def entry_for(root: Path, path: Path, reused: bool = False) -> FileEntry:
    return FileEntry(
        path=path.relative_to(root).as_posix(),
        size=path.stat().st_size,
        sha256=sha256_file(path),
        reused=reused,
    )


def write(root: Path, manifest: Manifest) -> None:
    """Write manifest.json and SHA256SUMS (every file, then the manifest itself), synced."""
    (root / MANIFEST).write_text(manifest.to_json())
    lines = [f"{f.sha256}  {f.path}" for f in manifest.files]
    lines.append(f"{sha256_file(root / MANIFEST)}  {MANIFEST}")
    (root / CHECKSUMS).write_text("\n".join(lines) + "\n")
    for name in (MANIFEST, CHECKSUMS):
        with (root / name).open("rb") as fh:
            os.fsync(fh.fileno())


def _safe(path: str) -> bool:
    p = PurePosixPath(path)
    return bool(path) and not p.is_absolute() and ".." not in p.parts


def read(root: Path) -> Manifest:
    """The manifest of a finished set, without checking the files (see ``verify``)."""
    where = root / MANIFEST
    if not where.is_file():
        raise BackupError(f"{root} is not a finished backup set: it has no {MANIFEST}")
    return Manifest.from_json(where.read_text(), where)


def verify(root: Path, progress=None) -> Manifest:
    """Check a set before restoring it: SHA256SUMS covers manifest.json, and every file the
    manifest lists is there with its size and SHA-256. Raises BackupError naming every
    file that is missing or differs; returns the manifest when all match."""
    manifest = read(root)
    sums = root / CHECKSUMS
    if not sums.is_file():
        raise BackupError(f"{root} has no {CHECKSUMS}")
    listed: dict[str, str] = {}
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    problems: list[str] = []
    if listed.get(MANIFEST) != sha256_file(root / MANIFEST):
        problems.append(f"{MANIFEST}: its checksum differs from the one in {CHECKSUMS}")
    for i, f in enumerate(manifest.files):
        if progress and i % 200 == 0:
            progress(f"checking {i}/{len(manifest.files)} files")
        if not _safe(f.path):
            problems.append(f"{f.path}: not a path inside the set")
            continue
        path = root / f.path
        if listed.get(f.path) != f.sha256:
            problems.append(f"{f.path}: the manifest and {CHECKSUMS} disagree")
        elif not path.is_file():
            problems.append(f"{f.path}: missing")
        elif path.stat().st_size != f.size:
            problems.append(f"{f.path}: {path.stat().st_size} bytes, the manifest says {f.size}")
        elif sha256_file(path) != f.sha256:
            problems.append(f"{f.path}: its SHA-256 differs from the manifest's (corrupted)")
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise BackupError(
            f"backup set {root} failed verification, nothing was restored: {shown}{more}",
            files=[p.split(":", 1)[0] for p in problems],
        )
    return manifest
