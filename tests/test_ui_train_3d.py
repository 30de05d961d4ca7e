"""The train view and the 3D view in headless Chromium against a real `convscope serve` (synthetic MNIST, so
training runs in seconds; a temporary database)."""

from __future__ import annotations

import re
import time

import pytest

from convscope.server.encoding import decode_layers
from convscope.testing.browser import (SEVEN, changed_pixels, checked_page, drawn_share, module_fixtures, stage_once,
                                       stroke, wait_until)
from convscope.training import TrainConfig


server, context = module_fixtures("ui5")


@pytest.fixture
def page(context, server):
    with checked_page(context) as page:
        yield page


def start_run(page, server, epochs: str, batch_size: str) -> int:
    """Open the train view, start a run, and wait for its first point on the loss chart; its id."""
    page.goto(server.url + "/#/train")
    # the form is ready (the server's limits applied) and the button free: two CI runs timed out waiting for this
    # POST with no request sent and no error on the page
    wait_until(page, "document.querySelector('form.train-form input[step=\"0.1\"]')?.max !== ''", 30)
    start = page.get_by_role("button", name="Start training")
    assert start.is_enabled(), page.locator(".train-view").inner_text()[:2000]
    page.get_by_label("Epochs").fill(epochs)
    page.get_by_label("Batch size").fill(batch_size)
    with page.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as answer:
        start.click(timeout=20_000)  # fails first, naming what stopped the click, if the button cannot be clicked
    run_id = answer.value.json()["id"]
    progress = "document.querySelector('.train-view progress + p').textContent"
    wait_until(page, f"{progress}.startsWith('Run #{run_id}: step')", 60)  # not the last run, shown at first
    wait_for_points(page, 1, 60)
    return run_id


def points(page) -> int:
    return page.evaluate("document.querySelector('.chart')?.data?.[0].x.length ?? 0")


def wait_for_points(page, count: int, timeout_s: float) -> None:
    wait_until(page, f"(document.querySelector('.chart')?.data?.[0].x.length ?? 0) >= {count}", timeout_s)


def test_a_run_streams_live_finishes_and_its_activated_model_is_used_on_the_home_page(page, server):
    run_id = start_run(page, server, "30", "8")
    wait_for_points(page, points(page) + 1, 30)  # the curve grows while the run goes on
    first = points(page)
    assert re.search(r"ETA", page.locator(".train-view progress + p").inner_text())
    wait_until(page, "document.querySelectorAll('.probe').length === 10", 30)
    message = page.locator(".train-view .message.info")
    message.wait_for(timeout=90_000)
    accuracy = server.request("GET", f"/api/jobs/{run_id}")[1]["test_metrics"]["accuracy"]
    assert message.inner_text().startswith(
        f"Run #{run_id} finished: test accuracy {accuracy * 100:.2f}%, saved as mnist_cnn v2")
    assert page.evaluate("document.querySelectorAll('.chart')[0].data[1].x.length") == 30  # one per epoch
    assert points(page) > first
    latencies = page.evaluate("window.__convscope.eventLatencies")
    assert latencies and all(lat < 5_000 for lat in latencies)
    filters = page.locator("canvas.live-filters").evaluate("c => [c.width, c.height]")
    assert filters == [8 * 4 - 1, 4 * 4 - 1]  # 32 filters of 3x3

    page.get_by_role("button", name="Activate").click()
    page.get_by_text("mnist_cnn v2 is now active").wait_for()
    assert "active: v2" in page.get_by_label("Model and version").inner_text()
    page.get_by_role("link", name="Draw & explain").click()
    page.wait_for_selector("section.layer[data-layer=conv1] canvas.maps")
    stroke(page, SEVEN[0])
    wait_until(page, "document.querySelector('.prediction .muted + .predicted-class + .confidence + span')"
                     "?.textContent === 'mnist_cnn v2'", 20)


def test_a_run_can_be_cancelled(page, server):
    start_run(page, server, "80", "8")
    page.get_by_role("button", name="Cancel").click()
    message = page.locator(".train-view .message.info")
    message.wait_for(timeout=30_000)
    assert "was cancelled; the active model is unchanged" in message.inner_text()
    # the runs table is reloaded after the message
    wait_until(page, "document.querySelector('.runs tbody tr td[data-label=status]')?.textContent === 'cancelled'")


def status_cell(page, run_id: int) -> str:
    return page.locator(f".runs tr[data-run='{run_id}'] td[data-label=status]").inner_text()


def run_job(server, **config) -> dict:
    """A run started through the API, waited for until it ends."""
    status, job = server.request("POST", "/api/jobs", {"epochs": 1, "batch_size": 64, **config})
    assert status == 202, job
    deadline = time.monotonic() + 120
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = server.request("GET", f"/api/jobs/{job['id']}")[1]
    return job


def test_a_running_run_shows_its_status_and_a_reload_shows_it_live_then_the_last_run(page, server):
    run_id = start_run(page, server, "80", "8")
    assert page.locator(".runs tr.shown").get_attribute("data-run") == str(run_id)
    wait_until(page, f"document.querySelector(\".runs tr[data-run='{run_id}'] td[data-label=status]\")"
                     f"?.textContent.startsWith('running, ')", 20)  # not "queued": the real status, with progress
    assert re.fullmatch(r"running, \d+%", status_cell(page, run_id))

    page.reload()  # the view shows the run as it is: its curves so far, then live
    wait_for_points(page, 1, 30)
    wait_for_points(page, points(page) + 1, 30)
    assert "ETA" in page.locator(".train-view progress + p").inner_text()
    assert page.locator(".runs tr.shown").get_attribute("data-run") == str(run_id)
    assert re.fullmatch(r"running, \d+%", status_cell(page, run_id))
    assert page.get_by_role("button", name="Start training").is_disabled()
    page.get_by_role("button", name="Cancel").click()
    page.locator(".train-view .message.info", has_text="was cancelled").wait_for(timeout=30_000)
    shown = points(page)

    page.reload()  # the last run, as it ended
    page.locator(".train-view .message.info", has_text=f"Run #{run_id} was cancelled").wait_for(timeout=30_000)
    assert points(page) == shown > 0
    assert page.locator(".train-view progress + p").inner_text().startswith(f"Run #{run_id} (mnist_cnn): cancelled")
    assert page.get_by_role("button", name="Start training").is_enabled()


def validation_points(page) -> int:
    return page.evaluate("document.querySelectorAll('.chart')[1].data?.[1].x.length ?? 0")


def test_each_past_run_opens_to_show_its_curves(page, server):
    two = run_job(server, epochs=2, seed=1)
    one = run_job(server, epochs=1, seed=2)
    assert two["status"] == one["status"] == "completed"
    page.goto(server.url + "/#/train")
    page.locator(".train-view .message.info", has_text=f"Run #{one['id']} finished").wait_for(timeout=30_000)
    assert validation_points(page) == 1  # the newest run: one epoch
    page.get_by_role("button", name=f"Show run {two['id']}").click()
    page.locator(".train-view .message.info", has_text=f"Run #{two['id']} finished").wait_for(timeout=30_000)
    assert validation_points(page) == 2 and points(page) >= 1
    assert page.locator(".runs tr.shown").get_attribute("data-run") == str(two["id"])
    assert page.evaluate("document.querySelectorAll('.probe').length") == 10  # its test digits as it ended
    assert page.locator("canvas.live-filters").evaluate("c => [c.width, c.height]") == [8 * 4 - 1, 4 * 4 - 1]


def test_chosen_runs_are_compared_curves_overlaid_and_hyperparameters_against_metrics(page, server):
    slow = run_job(server, epochs=2, lr=1e-4, seed=4)
    fast = run_job(server, epochs=2, lr=5e-3, seed=4)
    assert slow["status"] == fast["status"] == "completed"
    page.goto(server.url + "/#/train")
    comparison = page.get_by_label("Compare runs")
    page.get_by_label(f"Compare run {slow['id']}").check()
    page.get_by_label(f"Compare run {fast['id']}").check()
    wait_until(page, "document.querySelector('[data-testid=compare-accuracy]').data?.length === 2")
    curves = page.evaluate("document.querySelector('[data-testid=compare-accuracy]').data.map(t => t.y)")
    assert curves == [[e["val_accuracy"] for e in run["history"]] for run in (slow, fast)]
    rows = comparison.locator("[data-testid=hparams] tbody tr")
    assert rows.count() == 2 and "\t0.0001\t" in rows.nth(0).inner_text() and "\t0.005\t" in rows.nth(1).inner_text()
    best = fast if fast["history"][-1]["val_accuracy"] > slow["history"][-1]["val_accuracy"] else slow
    marked = comparison.locator("[data-testid=hparams] td.best", has_text="%").first
    assert marked.evaluate("td => td.parentElement.dataset.run") == str(best["id"])
    page.get_by_label(f"Compare run {slow['id']}").uncheck()
    wait_until(page, "document.querySelector('[data-testid=compare-accuracy]').data?.length === 1")
    page.get_by_label(f"Compare run {fast['id']}").uncheck()
    comparison.wait_for(state="hidden")


def test_a_diverged_run_says_so_and_offers_no_activation(page, server):
    job = run_job(server, epochs=3, lr=10, optimizer="sgd", schedule="constant", seed=0)  # NaN loss at once
    assert job["status"] == "diverged"
    page.goto(server.url + "/#/train")
    page.locator(".train-view .message.error", has_text=f"Run #{job['id']} diverged: the loss became NaN or "
                                                       "infinite").wait_for(timeout=30_000)
    row = page.locator(f".runs tr[data-run='{job['id']}']")
    assert status_cell(page, job["id"]) == "diverged"
    assert row.get_by_role("button", name="Activate").count() == 0
    assert row.locator("td[data-label=version]").inner_text() == "–"  # no version


def test_the_3d_view_draws_every_layer_updates_in_place_reads_cells_and_cleans_up(page, server):
    page.goto(server.url + "/#/network")
    page.get_by_label("Digit to sample").select_option("1")
    page.get_by_role("button", name="Random sample").click()
    wait_until(page, "window.__convscope.network3d?.updates >= 1", 30)
    before = stage_once(page, lambda picture: drawn_share(picture) > 0.05)  # not blank
    page.get_by_label("Digit to sample").select_option("0")
    with page.expect_response(lambda r: r.url.endswith("/api/predict") and r.request.method == "POST") as answer:
        page.get_by_role("button", name="Random sample").click()
    wait_until(page, "window.__convscope.network3d.updates >= 2", 30)
    stage_once(page, lambda picture: changed_pixels(picture, before) > 100)  # the colours changed with the input

    # A pooling layer's cell reads that cell's value (a hover once read the wrong layer here)
    pool1 = decode_layers(answer.value.json()["layers"])["pool1"]
    point = page.evaluate("window.__convscope.network3d.screenPosition('pool1', 5, 6, 6)")
    page.mouse.move(point["x"], point["y"])
    tooltip = page.locator(".tooltip")
    wait_until(page, "document.querySelector('.tooltip').textContent.includes('channel')", 10)
    reading = re.fullmatch(r"pool1 \(pool\), channel 5, row 6, column 6: (-?\d+\.\d{3})", tooltip.inner_text())
    assert reading, tooltip.inner_text()
    assert float(reading.group(1)) == pytest.approx(float(pool1[5, 6, 6]), abs=1e-3)
    measured = page.evaluate("window.__convscope.network3d.measureFps(3)")
    assert measured["cells"] == 784 + 32 * 26 * 26 + 32 * 13 * 13 + 64 * 11 * 11 + 64 * 5 * 5 + 128 + 10
    assert measured["drawCalls"] <= 20  # one per layer mesh, plus labels and lines: not one per cell
    surfaces = page.evaluate("document.querySelector('.surfaces').data.length")
    assert surfaces == 4  # channels 0-3 of the chosen layer

    page.get_by_role("link", name="Dashboard").click()
    assert page.evaluate("window.__convscope.network3d.disposed") is True


def test_the_train_view_says_the_mlp_has_no_filters_instead_of_an_empty_panel(page, server):
    page.goto(server.url + "/#/train")
    page.locator("form.train-form").get_by_label("Model").select_option("mnist_mlp")
    note = page.locator(".filters-note", has_text="mnist_mlp has no conv layer")
    note.wait_for()
    assert page.locator("canvas.live-filters").is_hidden()
    page.locator("form.train-form").get_by_label("Model").select_option("mnist_cnn")
    note.wait_for(state="hidden")
    assert page.locator("canvas.live-filters").is_visible()


def test_the_train_forms_defaults_limits_and_choices_are_the_servers(page, server):
    status, openapi = server.request("GET", "/api/openapi.json")
    job = openapi["components"]["schemas"]["JobRequest"]["properties"]
    page.goto(server.url + "/#/train")
    epochs = page.get_by_label("Epochs")
    wait_until(page, "(document.querySelector('form.train-form input[step=\"0.1\"]')?.value ?? '') !== ''")
    assert float(epochs.input_value()) == job["epochs"]["default"]
    assert float(epochs.get_attribute("max")) == job["epochs"]["maximum"]
    # the form opens on `convscope train`'s fast recipe (the engine's TrainConfig), not a copy of it
    fast = TrainConfig()
    assert (float(epochs.input_value()), int(page.get_by_label("Batch size").input_value())) == (fast.epochs,
                                                                                               fast.batch_size)
    assert float(page.get_by_label("Batch size").get_attribute("max")) == job["batch_size"]["maximum"]
    optimizers = page.locator("form.train-form").get_by_label("Optimizer").locator("option").all_inner_texts()
    assert optimizers == job["optimizer"]["enum"]
