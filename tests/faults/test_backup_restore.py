"""Backup and restore drills (issue 14, item 6): a backup taken while reports stream in
restores into a fresh cluster whole; a point-in-time recovery stops at the chosen moment;
a corrupted set is refused before anything is touched; photos are incremental.

Each test starts what it needs: the source is a PostgreSQL cluster of this module's own
(temporary data directory, free port) with WAL archiving on and its signing key kept in
its var_dir, as a deployment has it; every restore goes into another fresh cluster (new
data directory, new port, new var_dir and photo directory).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gis_service.app import create_app
from gis_service.auth import tokens
from gis_service.backup import dump, manifest, pgtools, restore, wal
from gis_service.cases import photos as photo_store
from gis_service.db import cluster, migrate
from gis_service.errors import GisServiceError
from gis_service.settings import Settings
from tests.browser import free_port
from tests.conftest import (
    IN_GRID_1,
    import_test_city,
    make_user,
)
from tests.images import image_bytes

#: each drill, clusters and all, must finish within this many seconds
BOUND_SECONDS = 120
PASSWORD = "password-123"


def scratch(prefix: str) -> Path:
    # straight under the temporary directory: when the tests run as root the server runs
    # as the postgres user, who cannot enter pytest's private tmp_path
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    return root


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The source cluster with the small test city, a grid worker and an admin."""
    root = scratch("gis-backup-src-")
    settings = Settings(
        var_dir=root / "var",
        db_port=free_port(),
        db_name="gis_service_backup_src",
        photo_dir=root / "photos",
        wal_archive_dir=root / "wal-archive",
        tile_freshness_seconds=0,
        db_pool_size=4,
    )
    assert settings.secret_key is None  # the key lives in var_dir/secret_key
    try:
        cluster.start(settings)
        migrate.upgrade(settings)
        tmp = tmp_path_factory.mktemp("backup-city")
        import_test_city(settings, tmp, grids=True)
        yield {
            "settings": settings,
            "root": root,
            "worker": make_user(
                settings, "grid_worker", scopes=["41019900100101"], username="gw", password=PASSWORD
            ),
            "admin": make_user(settings, "admin", username="admin"),
        }
    finally:
        cluster.stop(settings)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def fresh_target(name: str) -> Iterator[Settings]:
    """Settings for a cluster that does not exist yet: new data dir, port, var_dir."""
    root = scratch(f"gis-backup-{name}-")
    settings = Settings(
        var_dir=root / "var",
        db_port=free_port(),
        db_name="gis_service_restored",
        photo_dir=root / "photos",
        tile_freshness_seconds=0,
        db_pool_size=4,
    )
    try:
        yield settings
    finally:
        cluster.stop(settings)
        shutil.rmtree(root, ignore_errors=True)


def post_report(client: TestClient, who: dict, n: int, photo: bool = True) -> dict:
    """One report as the phone sends it (multipart with a photo, or JSON; Idempotency-Key),
    retried with the same key until acknowledged; its answer."""
    fields = {
        "category": "environment.garbage",
        "lon": IN_GRID_1[0],
        "lat": IN_GRID_1[1],
        "description": f"楼下垃圾堆放 #{n}",
    }
    files = [("photo", ("p.jpg", image_bytes(size=(160, 120), seed=n), "image/jpeg"))]
    headers = {**who, "Idempotency-Key": f"drill-{n}-{photo}"}
    for _ in range(5):
        if photo:
            form = {k: str(v) for k, v in fields.items()}
            r = client.post("/api/v1/cases", headers=headers, data=form, files=files)
        else:
            r = client.post("/api/v1/cases", headers=headers, json=fields)
        if r.status_code in (200, 201):
            return r.json()
        time.sleep(0.1)
    raise AssertionError(f"report {n} not acknowledged: {r.status_code} {r.text[:300]}")


def query(settings: Settings, statement: str) -> list[tuple]:
    conn = pgtools.connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall()
    finally:
        conn.close()


def case_ids(settings: Settings) -> set[int]:
    return {r[0] for r in query(settings, "SELECT id FROM cases")}


_seed = iter(range(1, 100_000))


def test_a_backup_taken_while_reports_stream_in_restores_whole(source: dict) -> None:
    started = time.monotonic()
    s, worker, admin = source["settings"], source["worker"], source["admin"]
    out = source["root"] / "sets" / "streamed"
    acks: list[tuple[datetime, int]] = []
    stop = threading.Event()
    failures: list[BaseException] = []
    window: dict[str, datetime] = {}
    with TestClient(create_app(s)) as client:

        def stream() -> None:
            try:
                while not stop.is_set():
                    answer = post_report(client, worker, next(_seed))
                    acks.append((datetime.now(UTC), answer["id"]))
            except BaseException as exc:  # reported by the test thread
                failures.append(exc)

        sender = threading.Thread(target=stream, daemon=True)
        sender.start()
        while len(acks) < 10 and not failures:
            time.sleep(0.02)
        window["start"] = datetime.now(UTC)
        summary = dump.backup(s, out)
        window["end"] = datetime.now(UTC)
        during = len(acks)
        while len(acks) < during + 5 and not failures:
            time.sleep(0.02)
        stop.set()
        sender.join(30)
        assert not failures, failures
        source_cases = {i: client.get(f"/api/v1/cases/{i}", headers=admin).json() for _, i in acks}

    made = manifest.verify(out)
    snapshot_at = datetime.fromisoformat(made.database["snapshot_at"])
    acked_before = {i for t, i in acks if t < snapshot_at}
    streamed_during = [i for t, i in acks if window["start"] <= t <= window["end"]]
    print(
        f"\n[backup while reporting] {len(acks)} reports acknowledged, {len(acked_before)} "
        f"before the snapshot, {len(streamed_during)} while the backup ran; {summary.line()}"
    )
    assert acked_before and streamed_during  # the backup really ran amid the stream
    assert len(acks) > len(acked_before)

    with fresh_target("a") as target:
        cluster.start(target)
        result = restore.restore(target, out)
        print(f"[restore] {result.line()}")
        restored = case_ids(target)
        # every report acknowledged before the snapshot, and exactly the snapshot's cases
        assert acked_before <= restored
        assert len(restored) == made.database["rows"]["public.cases"] == result.rows["public.cases"]
        assert restored <= set(source_cases) | case_ids(s)
        assert result.rows == made.database["rows"]

        stored = {
            i: (sha, mime) for i, sha, mime in query(s, "SELECT id, sha256, mime FROM case_photo")
        }
        with TestClient(create_app(target)) as there:
            # tokens signed before the backup verify: the signing key came with it
            partial = 0
            for i in sorted(restored):
                r = there.get(f"/api/v1/cases/{i}", headers=admin)
                assert r.status_code == 200, r.text
                case, whole = r.json(), source_cases[i]
                if i in acked_before:  # the case, its timeline and its photos, all of it
                    assert case == whole
                    assert [e["action"] for e in case["timeline"]] == ["report", "photo"]
                else:
                    # committed before the snapshot, acknowledged after it: the report path
                    # writes the case, then its photos in a second transaction
                    # (cases/routes.py), so the snapshot may hold the case without them
                    # yet -- a prefix of what it became, never anything else
                    assert case["timeline"] == whole["timeline"][: len(case["timeline"])]
                    assert case["photos"] == whole["photos"][: len(case["photos"])]
                    rest = {k: v for k, v in case.items() if k not in ("timeline", "photos")}
                    assert rest == {k: v for k, v in whole.items() if k in rest}
                    partial += case != whole
                for p in case["photos"]:
                    for thumb in (False, True):
                        url = f"/api/v1/cases/{i}/photos/{p['id']}?thumb={str(thumb).lower()}"
                        got = there.get(url, headers=admin)
                        assert got.status_code == 200, got.text
                        sha, mime = stored[p["id"]]
                        ext = photo_store.EXTENSIONS[mime]
                        original = photo_store.path_for(s.photos_path, sha, ext, thumb)
                        assert got.content == original.read_bytes()  # bytes identical
            print(f"[restore] {partial} case(s) restored without the photo sent after it")
            # a worker signs in with the password, and the new token works there
            signed = there.post("/api/v1/auth/token", data={"username": "gw", "password": PASSWORD})
            assert signed.status_code == 200, signed.text
            bearer = {"Authorization": "Bearer " + signed.json()["access_token"]}
            listed = there.get("/api/v1/cases", headers=bearer)
            assert listed.status_code == 200 and listed.json()["numberMatched"] == len(restored)
            assert tokens.read(worker["Authorization"].split()[1], target).username == "gw"
        # a second restore into the now full target is refused, and changes nothing
        with pytest.raises(manifest.TargetNotEmpty, match="--force"):
            restore.restore(target, out)
        assert case_ids(target) == restored
    assert time.monotonic() - started < BOUND_SECONDS


def test_a_point_in_time_restore_stops_at_the_chosen_moment(source: dict) -> None:
    """Base backup, cases A, the moment, cases B, the WAL archived: a recovery to the
    moment holds A and everything before it, and none of B."""
    started = time.monotonic()
    s, worker, admin = source["settings"], source["worker"], source["admin"]
    base_dir = source["root"] / "sets" / "base"
    base = dump.base_backup(s, base_dir)
    with TestClient(create_app(s)) as client:
        a = {post_report(client, worker, next(_seed))["id"] for _ in range(3)}
        time.sleep(0.3)
        moment = datetime.now(UTC)
        time.sleep(0.3)
        b = {post_report(client, worker, next(_seed))["id"] for _ in range(3)}
    before = case_ids(s) - b
    # a nightly dump after the moment carries the photos taken since the base backup
    later = dump.backup(s, source["root"] / "sets" / "after-pitr-moment")
    conn = pgtools.connect(s)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            segment = wal.switch_and_wait(cur)
    finally:
        conn.close()
    archive = s.wal_archive_dir
    assert archive is not None and (archive / segment).is_file()

    with fresh_target("pitr") as target:
        result = restore.restore_pitr(target, base_dir, moment, photos_from=[later.out])
        print(f"\n[pitr] {base.line()}\n[pitr] {result.line()}; {result.warnings}")
        restored = case_ids(target)
        assert a <= restored and not b & restored
        assert restored == before
        assert restore.missing_photos(target) == []
        pgdata = cluster.data_dir(target)
        assert not (pgdata / restore.RECOVERY_CONF).exists()
        assert not (pgdata / wal.CONF).exists()  # it does not archive into the source's
        with TestClient(create_app(target)) as there:
            for i in a:
                case = there.get(f"/api/v1/cases/{i}", headers=admin).json()
                url = f"/api/v1/cases/{i}/photos/{case['photos'][0]['id']}"
                assert there.get(url, headers=admin).status_code == 200
            for i in b:
                assert there.get(f"/api/v1/cases/{i}", headers=admin).status_code == 404
            # the recovered cluster is a primary: it takes new reports
            answer = post_report(there, worker, next(_seed), photo=False)
            assert answer["id"] not in before  # the sequences came back too
        # a moment before the base backup cannot be reached: refused before anything
        with pytest.raises(manifest.BackupError, match="before the end of the base backup"):
            restore.restore_pitr(target, base_dir, datetime.fromisoformat("2020-01-01T00:00Z"))
        # nor one the archive does not reach (PostgreSQL stops: "recovery ended before
        # configured recovery target was reached"); the cluster it was to replace is back
        with pytest.raises(manifest.TargetNotEmpty, match="cluster exists"):
            restore.restore_pitr(target, base_dir, moment)
        future = datetime.now(UTC).replace(year=datetime.now(UTC).year + 1)
        with pytest.raises(GisServiceError, match="recovery target was reached"):
            restore.restore_pitr(target, base_dir, future, force=True)
        assert case_ids(target) == restored | {answer["id"]}
        assert not list(pgdata.parent.glob(f"*{pgdata.name}*restor*"))
    assert time.monotonic() - started < BOUND_SECONDS


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_corrupted_set_is_refused_naming_the_file_and_the_target_is_untouched(
    source: dict,
) -> None:
    started = time.monotonic()
    s, worker = source["settings"], source["worker"]
    with TestClient(create_app(s)) as client:
        post_report(client, worker, next(_seed))
    good = source["root"] / "sets" / "to-corrupt"
    dump.backup(s, good)
    made = manifest.read(good)
    photo = next(f.path for f in made.files if f.path.startswith(manifest.PHOTOS + "/"))
    with fresh_target("corrupt") as target:
        cluster.start(target)
        for n, victim in enumerate([manifest.DUMP, photo, manifest.KEY]):
            bad = source["root"] / "sets" / f"corrupted-{n}"
            shutil.copytree(good, bad)
            flip_one_byte(bad / victim)
            with pytest.raises(manifest.BackupError) as refused:
                restore.restore(target, bad)
            assert victim in str(refused.value) and "corrupted" in str(refused.value)
            assert refused.value.extra["files"] == [victim]
            # untouched: no table, no photo, no key, no leftover temporary database
            assert restore.target_holdings(target) == []
            assert not target.photos_path.exists()
            assert not (target.var_dir / "secret_key").exists()
            rows = query(target, "SELECT datname FROM pg_database WHERE datname LIKE '%restoring%'")
            assert rows == []
        # the command line says so in one line naming the file, and exits non-zero
        env = {
            **os.environ,
            "GIS_VAR_DIR": str(target.var_dir),
            "GIS_DB_PORT": str(target.db_port),
            "GIS_DB_NAME": target.db_name,
            "GIS_PHOTO_DIR": str(target.photos_path),
        }
        cli = Path(sys.executable).parent / "gis-service"
        done = subprocess.run(
            [cli, "restore", bad], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode != 0 and manifest.KEY in done.stderr, done.stderr
        assert restore.target_holdings(target) == []

        # the good set restores; a second time it is refused (the target holds data) ...
        first = restore.restore(target, good)
        done = subprocess.run(
            [cli, "restore", good], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode != 0 and "not empty" in done.stderr and "--force" in done.stderr
        # ... unless forced
        done = subprocess.run(
            [cli, "restore", "--force", good], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert f"{first.rows['public.cases']} cases" in done.stdout
        assert query(target, "SELECT count(*) FROM cases")[0][0] == first.rows["public.cases"]
    assert time.monotonic() - started < BOUND_SECONDS


def test_a_later_backup_copies_only_the_new_photos(source: dict) -> None:
    started = time.monotonic()
    s, worker = source["settings"], source["worker"]
    root = source["root"] / "nightly"
    with TestClient(create_app(s)) as client:
        post_report(client, worker, next(_seed))
        first = dump.backup_into_root(s, root)
        new = [post_report(client, worker, next(_seed)) for _ in range(3)]
    second = dump.backup_into_root(s, root)
    assert second.out != first.out and dump.latest_set(root) == second.out
    before = manifest.read(first.out).by_path()
    after = manifest.verify(second.out)  # linked files check out too
    assert after.previous == str(first.out)
    photos = [f for f in after.files if f.path.startswith(manifest.PHOTOS + "/")]
    reused = [f for f in photos if f.path in before]
    fresh = [f for f in photos if f.path not in before]
    assert len(fresh) == 2 * len(new)  # each new report: its photo and its thumbnail
    assert len(reused) == first.photos == second.photos_reused
    for f in reused:
        old, now = os.stat(first.out / f.path), os.stat(second.out / f.path)
        assert f.reused and now.st_ino == old.st_ino and now.st_nlink >= 2
    for f in fresh:
        assert not f.reused and os.stat(second.out / f.path).st_nlink == 1
    others = sum(f.size for f in after.files if not f.path.startswith(manifest.PHOTOS + "/"))
    assert second.bytes_written == sum(f.size for f in fresh) + others
    print(
        f"\n[incremental] first: {first.line()}\n[incremental] second: {second.line()}; "
        f"photo bytes copied {sum(f.size for f in fresh)} of {sum(f.size for f in photos)}"
    )
    assert time.monotonic() - started < BOUND_SECONDS


def test_the_archive_command_never_overwrites_a_different_segment(tmp_path: Path) -> None:
    """§26.3.1: the archive command must refuse to overwrite an archived file with other
    contents, and should succeed for an identical one (a retry after a crash)."""
    archive = tmp_path / "archive"
    archive.mkdir()
    segment = tmp_path / "000000010000000000000007"
    segment.write_bytes(os.urandom(4096))

    def archive_it() -> int:
        command = wal.archive_command(archive)
        command = command.replace("%p", str(segment)).replace("%f", segment.name)
        return subprocess.run(["sh", "-c", command]).returncode

    assert archive_it() == 0
    assert (archive / segment.name).read_bytes() == segment.read_bytes()
    assert archive_it() == 0  # the same file again: done already
    assert [p.name for p in archive.iterdir()] == [segment.name]  # no .part left
    kept = (archive / segment.name).read_bytes()
    flip_one_byte(segment)
    assert archive_it() != 0  # another file of that name: refused, the archive kept
    assert (archive / segment.name).read_bytes() == kept
