"""Saved predictions, re-runs, reports and statistics, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import base64
import io
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import inspect, text

from convscope.server.app import create_app
from convscope.server import records
from convscope.server.db.database import Database
from convscope.server.inputs import is_lossy_webp
from convscope.server.settings import ServerSettings
from server_fixtures import make_client


def sample_pixels(client, digit: int, seed: int = 0) -> list[list[int]]:
    return client.get("/api/samples", params={"digit": digit, "seed": seed}).json()["pixels"]


def save(client, pixels, **extra) -> dict:
    response = client.post("/api/predictions", json={"pixels": pixels, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def test_save_recomputes_and_stores_the_input_image(db_client):
    pixels = sample_pixels(db_client, 3)
    predicted = db_client.post("/api/predict", json={"pixels": pixels}).json()
    saved = save(db_client, pixels)
    assert saved["predicted"] == predicted["predicted"]
    assert saved["probabilities"] == pytest.approx(predicted["probabilities"], abs=1e-6)
    assert saved["model"] == "mnist_cnn" and saved["version"] == 1 and saved["input_kind"] == "pixels"
    assert saved["reported"] is False and saved["reports"] == [] and saved["reruns"] == []
    # A client cannot tell the server what was predicted.
    forged = db_client.post("/api/predictions", json={"pixels": pixels, "predicted": 9, "confidence": 1.0})
    assert forged.status_code == 422
    one = db_client.get(f"/api/predictions/{saved['id']}").json()
    png = base64.b64decode(one["image"].split(",", 1)[1])
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), np.array(pixels, dtype=np.uint8))
    image = db_client.get(saved["image_url"])
    assert image.headers["content-type"] == "image/png" and image.content == png


def photo_of_a_one(size: int = 600) -> Image.Image:
    """A photo-like "1": noise on paper, as a phone takes it (PNG stores noise at full size, JPEG does not)."""
    rng = np.random.default_rng(0)
    paper = rng.normal(220, 12, (size, size)).clip(0, 255)
    paper[size // 10:size - size // 10, size // 2 - size // 16:size // 2 + size // 16] = 30
    return Image.fromarray(paper.astype(np.uint8)).convert("RGB")


def test_a_jpeg_or_lossy_webp_upload_is_kept_so_the_server_wrote_and_the_rest_png(db_client):
    jpeg = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # camera make: metadata a user may not mean to publish
    photo_of_a_one().save(jpeg, format="JPEG", quality=90, exif=exif)
    saved = db_client.post("/api/predictions/upload", files={"file": ("one.jpg", jpeg.getvalue(), "image/jpeg")})
    assert saved.status_code == 201 and saved.json()["input_kind"] == "upload"
    answer = db_client.get(saved.json()["image_url"])
    stored = Image.open(io.BytesIO(answer.content))
    assert answer.headers["content-type"] == "image/jpeg" and stored.format == "JPEG" and stored.size == (600, 600)
    assert "exif" not in stored.info  # re-encoded: nothing of the client's file but its pixels
    as_png = io.BytesIO()
    photo_of_a_one().save(as_png, format="PNG")
    assert len(answer.content) < 1.5 * len(jpeg.getvalue()) and len(as_png.getvalue()) > 2 * len(answer.content)
    detail = db_client.get(f"/api/predictions/{saved.json()['id']}").json()
    assert detail["image"].startswith("data:image/jpeg;base64,")
    rerun = db_client.post(f"/api/predictions/{saved.json()['id']}/rerun", json={})
    assert rerun.status_code == 200 and rerun.json()["rerun"]["predicted"] == saved.json()["predicted"]
    # the prediction was made from the image as kept, so a re-run on the same version sees the same pixels
    assert rerun.json()["rerun"]["probabilities"] == saved.json()["probabilities"]
    for kind, options, kept_as in [("PNG", {}, "png"), ("WEBP", {"lossless": True}, "png"),
                                   ("WEBP", {"quality": 90}, "webp")]:
        sent = io.BytesIO()
        photo_of_a_one(120).save(sent, format=kind, **options)
        saved = db_client.post("/api/predictions/upload", files={"file": (f"one.{kind.lower()}", sent.getvalue())})
        stored = db_client.get(saved.json()["image_url"])
        assert stored.headers["content-type"] == f"image/{kept_as}", (kind, options)
        assert Image.open(io.BytesIO(stored.content)).format == kept_as.upper()
        if kept_as == "webp":  # a lossy WebP, kept one: about its size, a fraction of the PNG's
            assert len(stored.content) < 1.5 * len(sent.getvalue()) < len(as_png.getvalue())
            rerun = db_client.post(f"/api/predictions/{saved.json()['id']}/rerun", json={}).json()["rerun"]
            assert rerun["probabilities"] == saved.json()["probabilities"]


@pytest.mark.parametrize("lossless", [False, True])
@pytest.mark.parametrize("mode, frames", [("RGB", 1), ("RGBA", 1), ("RGB", 2)])  # RGBA: an extended file (VP8X)
def test_lossy_and_lossless_webp_are_told_apart_still_or_animated(lossless, mode, frames):
    images = [Image.new(mode, (16, 16), (40 * i, 90, 200, 128)[:len(mode)]) for i in range(frames)]
    sent = io.BytesIO()
    images[0].save(sent, format="WEBP", lossless=lossless, save_all=frames > 1, append_images=images[1:])
    assert is_lossy_webp(sent.getvalue()) is (not lossless)
    assert (b"ANMF" in sent.getvalue()) is (frames > 1)


def test_saves_past_the_image_store_cap_are_refused_and_nothing_is_lost(tmp_path, synthetic_mnist_dir):
    settings = ServerSettings(data_dir=tmp_path / "capped", mnist_dir=synthetic_mnist_dir,
                              max_stored_image_bytes=1500)
    with make_client(settings) as client:
        answers = [client.post("/api/predictions", json={"pixels": sample_pixels(client, digit)}) for digit in range(8)]
        kept = [a.json()["id"] for a in answers if a.status_code == 201]
        refused = [a for a in answers if a.status_code != 201]
        assert kept and refused and all(a.status_code == 507 for a in refused)
        error = refused[0].json()["error"]
        assert error["code"] == "insufficient_storage" and error["message"].startswith(
            "the store of saved images is full (") and "raise CONVSCOPE_MAX_STORED_IMAGE_BYTES" in error["message"]
        assert client.get("/api/predictions").json()["total"] == len(kept)
        assert all(client.get(f"/api/predictions/{i}/image").status_code == 200 for i in kept)
        client.delete(f"/api/predictions/{kept[0]}")  # room again
        assert client.post("/api/predictions", json={"pixels": sample_pixels(client, 3)}).status_code == 201


def test_list_filters_and_pages(db_client):
    ids = {digit: [save(db_client, sample_pixels(db_client, digit, seed))["id"] for seed in range(2)]
           for digit in (1, 2)}
    mlp = save(db_client, sample_pixels(db_client, 1), model="mnist_mlp")
    predicted = {item["id"]: item["predicted"] for item in db_client.get("/api/predictions").json()["items"]}
    everything = db_client.get("/api/predictions").json()
    assert everything["total"] == 5 and [i["id"] for i in everything["items"]] == sorted(predicted, reverse=True)
    digit = predicted[ids[1][0]]
    by_digit = db_client.get("/api/predictions", params={"digit": digit}).json()
    assert {i["id"] for i in by_digit["items"]} == {i for i, d in predicted.items() if d == digit}
    by_model = db_client.get("/api/predictions", params={"model": "mnist_mlp"}).json()
    assert [i["id"] for i in by_model["items"]] == [mlp["id"]]
    page = db_client.get("/api/predictions", params={"limit": 2, "offset": 2}).json()
    assert page["total"] == 5 and [i["id"] for i in page["items"]] == [i["id"] for i in everything["items"][2:4]]
    db_client.post(f"/api/predictions/{ids[2][1]}/reports", json={"correct_label": 2, "reason": ""})
    reported = db_client.get("/api/predictions", params={"reported": True}).json()
    assert [i["id"] for i in reported["items"]] == [ids[2][1]] and reported["items"][0]["reported"] is True
    assert db_client.get("/api/predictions", params={"reported": False}).json()["total"] == 4
    assert db_client.get("/api/predictions", params={"limit": 0}).status_code == 422


def test_reports_keep_the_reason_as_text_validate_the_label_and_resolve(db_client):
    saved = save(db_client, sample_pixels(db_client, 5))
    reason = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'
    report = db_client.post(f"/api/predictions/{saved['id']}/reports", json={"correct_label": 6, "reason": reason})
    assert report.status_code == 201 and report.headers["content-type"] == "application/json"
    body = report.json()
    assert body["reason"] == reason and body["correct_label"] == 6 and body["resolved"] is False
    assert body["correct_class"] == "6"
    for label in (-1, "seven", 2**31):
        bad = db_client.post(f"/api/predictions/{saved['id']}/reports", json={"correct_label": label})
        assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "body.correct_label"
    bad = db_client.post(f"/api/predictions/{saved['id']}/reports", json={"correct_label": 10})
    assert bad.status_code == 422
    assert bad.json()["error"]["message"] == "correct_label must be a class index of mnist_cnn: 0-9, got 10"
    assert db_client.post("/api/predictions/999/reports", json={"correct_label": 1}).status_code == 404
    predicted = saved["predicted"]
    same = db_client.post(f"/api/predictions/{saved['id']}/reports", json={"correct_label": predicted})
    assert same.status_code == 422 and same.json()["error"]["message"].startswith(
        f"correct_label {predicted} ({predicted}) is what the model predicted")
    unexplained = db_client.post(f"/api/predictions/{saved['id']}/reports", json={"correct_label": None})
    assert unexplained.status_code == 422 and "needs a reason" in unexplained.json()["error"]["message"]
    listed = db_client.get("/api/reports").json()
    assert listed["total"] == 1 and listed["items"][0]["prediction"]["id"] == saved["id"]
    resolved = db_client.put(f"/api/reports/{body['id']}", json={"resolved": True}).json()
    assert resolved["resolved"] is True and resolved["resolved_at"]
    assert db_client.get("/api/reports", params={"resolved": False}).json()["total"] == 0
    assert db_client.put(f"/api/reports/{body['id']}", json={"resolved": False}).json()["resolved_at"] is None
    assert db_client.put("/api/reports/999", json={"resolved": True}).status_code == 404


def test_listings_count_child_lists_instead_of_embedding_them(db_client):
    """Issue 14: with a prediction reported many times, every report in GET /api/reports embedded the prediction
    with all of its reports: quadratic (1,000 reports made a 1 GB answer). Listings now carry counts."""
    saved = save(db_client, sample_pixels(db_client, 2))
    other = save(db_client, sample_pixels(db_client, 3))
    for i in range(30):
        db_client.post(f"/api/predictions/{saved['id']}/reports", json={"correct_label": 1, "reason": f"#{i}"})
    db_client.post(f"/api/predictions/{saved['id']}/rerun", json={})
    reports = db_client.get("/api/reports", params={"limit": 50})
    items = reports.json()["items"]
    assert len(items) == 30 and all(item["prediction"]["id"] == saved["id"] for item in items)
    assert items[0]["prediction"]["reports_count"] == 30 and items[0]["prediction"]["reruns_count"] == 1
    assert "reports" not in items[0]["prediction"] and "reruns" not in items[0]["prediction"]
    assert len(reports.content) < 30 * 1200  # linear in the page: about a kilobyte a report
    listed = {item["id"]: item for item in db_client.get("/api/predictions").json()["items"]}
    assert (listed[saved["id"]]["reports_count"], listed[saved["id"]]["reported"]) == (30, True)
    assert (listed[other["id"]]["reports_count"], listed[other["id"]]["reported"]) == (0, False)
    assert "reports" not in listed[saved["id"]]
    detail = db_client.get(f"/api/predictions/{saved['id']}").json()  # one prediction in full keeps its lists
    assert len(detail["reports"]) == 30 and detail["reports_count"] == 30 and len(detail["reruns"]) == 1


def test_an_image_url_never_shows_a_deleted_records_image(db_client):
    """SQLite gives a new row the id of a deleted last one; the listing's image URL names the record itself, so a
    browser's day-long cache of the old picture is never used for the new one."""
    first = save(db_client, sample_pixels(db_client, 1))
    old_url = db_client.get("/api/predictions").json()["items"][0]["image_url"]
    assert old_url.startswith(f"/api/predictions/{first['id']}/image?v=")
    cached = db_client.get(old_url)
    assert cached.status_code == 200 and "max-age=86400" in cached.headers["cache-control"]
    assert db_client.delete(f"/api/predictions/{first['id']}").status_code == 204
    second = save(db_client, sample_pixels(db_client, 8))
    new_url = db_client.get("/api/predictions").json()["items"][0]["image_url"]
    assert new_url != old_url  # whether or not the id was reused
    assert db_client.get(new_url).content == db_client.get(f"/api/predictions/{second['id']}/image").content
    if second["id"] == first["id"]:  # SQLite reused it: the old URL says so instead of serving another picture
        assert db_client.get(old_url).status_code == 404
    bare = db_client.get(f"/api/predictions/{second['id']}/image")
    assert bare.headers["cache-control"] == "private, no-cache"  # revalidated: the id alone is not proof


def test_statistics_by_hand(db_client):
    saved = [save(db_client, sample_pixels(db_client, digit, 0)) for digit in (0, 1, 2, 3)]
    predicted = [s["predicted"] for s in saved]
    first, second = (predicted[0] + 1) % 10, (predicted[1] + 2) % 10  # any class but the predicted one
    db_client.post(f"/api/predictions/{saved[0]['id']}/reports", json={"correct_label": first, "reason": "a"})
    db_client.post(f"/api/predictions/{saved[1]['id']}/reports", json={"correct_label": second, "reason": "b"})
    db_client.post(f"/api/predictions/{saved[1]['id']}/reports", json={"correct_label": second, "reason": "again"})
    stats = db_client.get("/api/stats", params={"model": "mnist_cnn"}).json()
    assert stats["predictions"] == 4 and stats["reported_predictions"] == 2
    assert stats["reported_error_rate"] == 0.5
    assert stats["reports"] == {"total": 3, "open": 3, "resolved": 0}
    assert stats["classes"] == stats["confusion"]["labels"] == [str(d) for d in range(10)]  # every MNIST class
    expected = np.zeros((10, 10), int)
    expected[predicted[0], first] += 1
    expected[predicted[1], second] += 2
    assert np.array_equal(np.array(stats["confusion"]["matrix"]), expected)
    per_class = {row["class"]: row for row in stats["per_class"]}
    for digit in range(10):
        assert per_class[str(digit)]["saved"] == predicted.count(digit)
        # "reported": the saved predictions of that class with a report (saved[0] and saved[1], each counted once)
        assert per_class[str(digit)]["reported"] == predicted[:2].count(digit)
    # Without a model: only the classes that occur, in index order.
    occurring = db_client.get("/api/stats").json()
    assert occurring["classes"] == sorted({str(p) for p in predicted} | {str(first), str(second)}, key=int)
    assert occurring["predictions"] == 4 and occurring["reports"] == stats["reports"]
    assert db_client.get("/api/stats", params={"model": "mnist_mlp"}).json()["predictions"] == 0


def test_rerun_keeps_the_original_and_records_the_run(db_client):
    saved = save(db_client, sample_pixels(db_client, 4))
    rerun = db_client.post(f"/api/predictions/{saved['id']}/rerun", json={"cam_method": "gradcam++"})
    assert rerun.status_code == 200
    body = rerun.json()
    assert body["original"]["predicted"] == saved["predicted"]
    assert body["rerun"]["predicted"] == saved["predicted"] and body["rerun"]["version"] == 1
    assert body["inspection"]["cam"]["method"] == "gradcam++" and len(body["inspection"]["layers"]) == 11
    assert body["original"]["reruns"] == [body["rerun"]]
    assert db_client.post(f"/api/predictions/{saved['id']}/rerun", json={"version": 9}).status_code == 404
    assert db_client.get(f"/api/predictions/{saved['id']}").json()["probabilities"] == saved["probabilities"]


def test_none_of_these_is_a_report_without_a_class_kept_out_of_the_confusion_matrix(db_client):
    saved = save(db_client, sample_pixels(db_client, 4))
    report = db_client.post(f"/api/predictions/{saved['id']}/reports",
                            json={"correct_label": None, "reason": "a smiley, not a digit"})
    assert report.status_code == 201
    assert (report.json()["correct_label"], report.json()["correct_class"]) == (None, None)
    assert db_client.get(f"/api/predictions/{saved['id']}").json()["reports"][0]["reason"] == "a smiley, not a digit"
    stats = db_client.get("/api/stats").json()
    assert stats["reported_predictions"] == 1 and stats["reports"]["total"] == 1
    assert sum(map(sum, stats["confusion"]["matrix"])) == 0


def test_delete_removes_the_prediction_and_its_reports(db_client):
    saved = save(db_client, sample_pixels(db_client, 6))
    db_client.post(f"/api/predictions/{saved['id']}/reports", json={"correct_label": 1})
    assert db_client.delete(f"/api/predictions/{saved['id']}").status_code == 204
    assert db_client.get(f"/api/predictions/{saved['id']}").status_code == 404
    assert db_client.get("/api/reports").json()["total"] == 0
    assert db_client.delete(f"/api/predictions/{saved['id']}").status_code == 404


def test_migrations_create_the_schema_once(empty_database_url, tmp_path):
    db = Database(empty_database_url)
    db.migrate()
    db.migrate()  # already at head: nothing to do
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0006"
        assert {"predictions", "reports", "reruns", "model_versions", "active_models", "training_jobs",
                "job_events", "evaluations"} <= set(inspect(connection).get_table_names())
    db.dispose()


def test_a_database_of_the_first_revision_upgrades_with_its_data(empty_database_url, tmp_path,
                                                                 synthetic_mnist_dir):
    """Rows written by revision 0001 (MNIST digits only, CHECK 0-9) read back after 0002 with their class names,
    and a class index beyond 9 is accepted afterwards."""
    db = Database(empty_database_url)
    db.migrate("0001")
    with db.engine.begin() as connection:
        def insert(sql: str, **values) -> None:
            connection.execute(text(sql), values)
        now = "2026-11-20 10:00:00"
        insert("INSERT INTO model_versions (id, model, version, source, created_at, details) "
               "VALUES (100, 'mnist_cnn', 1, 'packaged', :now, '{}')", now=now)  # ids past what sequences give
        insert("INSERT INTO active_models (model, version_id, updated_at) VALUES ('mnist_cnn', 100, :now)", now=now)
        insert("INSERT INTO predictions (id, created_at, model, version_id, input_kind, preprocess, input_png, "
               "predicted, confidence, probabilities) VALUES (7, :now, 'mnist_cnn', 100, 'pixels', false, :png, 3, "
               "0.9, '[0.1]')", now=now, png=b"\x89PNG")
        insert("INSERT INTO reruns (id, prediction_id, created_at, version_id, predicted, confidence, probabilities) "
               "VALUES (1, 7, :now, 100, 5, 0.8, '[0.2]')", now=now)
        insert("INSERT INTO reports (id, prediction_id, correct_label, reason, created_at) "
               "VALUES (1, 7, 8, 'an eight', :now)", now=now)
    db.migrate()
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT predicted, predicted_class FROM predictions")).one() == (3, "3")
        assert connection.execute(text("SELECT input_format, input_bytes FROM predictions")).one() == ("png", 4)
        assert connection.execute(text("SELECT predicted, predicted_class FROM reruns")).one() == (5, "5")
        assert connection.execute(text("SELECT correct_label, correct_class, reason FROM reports")).one() == (
            8, "8", "an eight")
    with db.engine.begin() as connection:  # the 0-9 constraints are gone
        connection.execute(text("UPDATE predictions SET predicted = 999, predicted_class = 'tench' WHERE id = 7"))
    db.dispose()
    settings = ServerSettings(data_dir=tmp_path / "server", mnist_dir=synthetic_mnist_dir,
                              database_url=empty_database_url)
    with make_client(settings) as client:
        body = client.get("/api/predictions/7").json()
        assert (body["predicted"], body["predicted_class"]) == (999, "tench")
        assert body["reports"][0]["correct_class"] == "8" and body["reruns"][0]["predicted_class"] == "5"


def test_going_back_a_revision_turns_the_kept_jpegs_into_pngs(database_url, tmp_path, synthetic_mnist_dir):
    settings = ServerSettings(data_dir=tmp_path / "server", mnist_dir=synthetic_mnist_dir, database_url=database_url)
    jpeg = io.BytesIO()
    photo_of_a_one(200).save(jpeg, format="JPEG")
    with make_client(settings) as client:
        saved = client.post("/api/predictions/upload", files={"file": ("one.jpg", jpeg.getvalue())}).json()
        client.post(f"/api/predictions/{saved['id']}/reports", json={"correct_label": 7})
        kept = Image.open(io.BytesIO(client.get(saved["image_url"]).content))
    db = Database(database_url)
    db.migrate("0005", down=True)
    with db.engine.connect() as connection:
        png = connection.execute(text("SELECT input_png FROM predictions")).scalar()
        assert connection.execute(text("SELECT count(*) FROM reports")).scalar() == 1  # nothing cascaded away
    assert png.startswith(b"\x89PNG") and np.array_equal(np.asarray(Image.open(io.BytesIO(png))), np.asarray(kept))
    db.migrate()
    db.dispose()


def test_a_delete_during_a_report_waits_for_it_and_takes_it_along(database_url, tmp_path, synthetic_mnist_dir):
    """A report (or a re-run) locks its prediction while it writes: a delete that comes meanwhile (another
    worker) waits, then removes both; without the lock PostgreSQL let the delete through and the report's insert
    failed on a row that was gone (a 500)."""
    settings = ServerSettings(data_dir=tmp_path / "server", mnist_dir=synthetic_mnist_dir, database_url=database_url)
    with make_client(settings) as client:
        saved = save(client, sample_pixels(client, 4))
    db = Database(database_url)
    deleted = threading.Event()

    def delete() -> None:
        with db.session(write=True) as session:
            session.delete(records.get_prediction(session, saved["id"]))
        deleted.set()

    deleter, waited = threading.Thread(target=delete), []

    def class_names(model: str) -> tuple[str, ...]:
        """Called by add_report between reading the prediction and writing the report: the delete comes now."""
        deleter.start()
        waited.append(not deleted.wait(0.5))
        return tuple("0123456789")

    with db.session(write=True) as session:
        records.add_report(session, saved["id"], 1, "a one", class_names)
    assert waited == [True]  # the delete waited for the report's transaction
    deleter.join(10)
    assert deleted.is_set()
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM reports")).scalar() == 0
        assert connection.execute(text("SELECT count(*) FROM predictions")).scalar() == 0
    db.dispose()


def test_two_workers_on_one_database_see_each_others_work(database_url, tmp_path, synthetic_mnist_dir):
    """Images and versions live in the database: a second app (another worker, another machine) needs no disk."""
    def settings(name):
        return ServerSettings(data_dir=tmp_path / name, mnist_dir=synthetic_mnist_dir, database_url=database_url)

    with make_client(settings("a")) as first, make_client(settings("b")) as second:
        pixels = sample_pixels(first, 8)
        saved = save(first, pixels)
        seen = second.get(f"/api/predictions/{saved['id']}").json()
        assert seen["predicted"] == saved["predicted"] and seen["image"].startswith("data:image/png;base64,")
        second.post(f"/api/predictions/{saved['id']}/reports", json={"correct_label": 3, "reason": "from b"})
        assert first.get("/api/stats").json()["reported_predictions"] == 1


def test_the_default_database_is_a_sqlite_file_in_wal_mode(tmp_path, synthetic_mnist_dir):
    settings = ServerSettings(data_dir=tmp_path / "fresh", mnist_dir=synthetic_mnist_dir)
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        assert client.get("/api/health").json()["database"] == "sqlite"
    db = Database(settings.database)
    with db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert (tmp_path / "fresh" / "convscope.db").is_file()
    db.dispose()
