"""A scientist follows a training run in a real browser, with a real worker: the metric charts grow live,
the status turns to finished, the logs tail, and the runs list shows the run with its metric value."""

import re
import threading
import time

import pytest
from playwright.sync_api import expect

from datasets.tests.factories import make_iris_version
from studio.core.testing import member
from tests.browser.test_team_journey import sign_in
from training.jobs import training_job_submit

pytestmark = [pytest.mark.browser, pytest.mark.integration]

JOB_TIMEOUT_MS = 120_000
EPOCHS = 15
POINTS = """() => {
  const chart = document.querySelector('[data-metric-key="val_accuracy"] .studio-chart');
  return chart && chart.data && chart.data.length ? chart.data[0].x.length : 0;
}"""


def wait_for_points(page, predicate, timeout_s: float = JOB_TIMEOUT_MS / 1000) -> int:
    """The val_accuracy chart's point count once `predicate(count)` holds (polled: the CSP forbids eval)."""
    deadline = time.monotonic() + timeout_s
    count = page.evaluate(POINTS)
    while not predicate(count) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
        count = page.evaluate(POINTS)
    assert predicate(count), f"the chart has {count} points"
    return count


def submit_elsewhere(**options):
    """Submit in another thread: Playwright's event loop runs in this one, where live events can't be sent."""
    from django.db import connection

    result = {}

    def submit():
        try:
            result["job"] = training_job_submit(**options)
        finally:
            connection.close()

    thread = threading.Thread(target=submit)
    thread.start()
    thread.join()
    return result["job"]


@pytest.fixture
def iris_version(transactional_db):
    version = make_iris_version()
    return member(version.dataset.project, username_prefix="sam"), version


def test_follow_a_training_run_live(iris_version, celery_worker_name, studio_server, open_context):
    user, version = iris_version
    project = version.dataset.project
    page = open_context().new_page()
    sign_in(page, studio_server, user.username)

    job = submit_elsewhere(
        user=user,
        project=project,
        dataset_version=version,
        trainer="tabular_classification",
        target="species",
        hyperparameters={"epochs": EPOCHS, "batch_size": 4, "seed": 7},
        name="iris-live",
    )

    # The run page, opened while the job is queued or running: its charts grow without a reload
    page.goto(f"{studio_server}/projects/{project.pk}/training/runs/{job.run_id}/")
    expect(page.get_by_role("heading", name="iris-live")).to_be_visible()
    expect(page.locator("#run-dataset")).to_contain_text("iris v")
    page.evaluate("window.__noReload = true")
    first = wait_for_points(page, lambda count: count > 0)
    assert first < EPOCHS, "the run finished before the page could watch it"
    wait_for_points(page, lambda count: count > first)

    # The Debugger tab (its state in the URL hash): each epoch's confusion matrix arrives as it is written
    page.locator("#debugger-tab").click()
    expect(page).to_have_url(re.compile(r"#debugger$"))
    expect(page.locator("#confusion-matrix-chart .main-svg").first).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#run-insights")).to_be_visible()
    expect(page.locator("#debugger-gradient-chart .main-svg").first).to_be_visible()

    expect(page.locator("#run-status .badge")).to_have_text("finished", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#confusion-matrix-epoch")).to_have_text(str(EPOCHS))
    expect(page.locator("#confusion-matrix-step")).to_have_attribute("max", str(EPOCHS - 1))
    page.screenshot(path="/tmp/run-debugger.png", full_page=True)
    page.locator("#overview-tab").click()
    expect(page).not_to_have_url(re.compile(r"#debugger$"))
    expect(page.locator("#run-stop")).to_be_hidden()
    assert page.evaluate(POINTS) > first
    assert page.evaluate("window.__noReload") is True, "the run page reloaded"
    expect(page.locator("#run-logs")).to_contain_text("training tabular_classification")
    page.screenshot(path="/tmp/run-page.png", full_page=True)

    # After a reload, the chart holds every epoch, the system metrics have their section, artifacts list
    page.reload()
    wait_for_points(page, lambda count: count == EPOCHS, timeout_s=10)
    expect(page.locator('#system-charts [data-metric-key="system/cpu_percent"]')).to_be_visible()
    expect(page.locator("#run-artifacts")).to_contain_text("model/model.safetensors")
    expect(page.locator("#run-params")).to_contain_text("epochs")

    # #debugger opens the Debugger tab: as a hash change on the page, and as a link opened afresh
    page.goto(f"{studio_server}/projects/{project.pk}/training/runs/{job.run_id}/#debugger")
    expect(page.locator("#debugger-tab")).to_have_class(re.compile(r"\bactive\b"))
    page.reload()
    expect(page.locator("#debugger-tab")).to_have_class(re.compile(r"\bactive\b"))
    expect(page.locator("#confusion-matrix-chart .main-svg").first).to_be_visible()

    # The runs list shows the run with its metric value, and a bad filter's message
    page.get_by_role("link", name="Runs", exact=True).first.click()
    row = page.locator(f'#runs-table tr[data-run-id="{job.run_id}"]')
    expect(row).to_contain_text("iris-live")
    expect(row).to_contain_text("finished")
    expect(page.locator("#runs-table thead")).to_contain_text("val_accuracy")
    expect(row.locator("td[data-metric]").first).to_have_text(re.compile(r"^\d\.\d{4}$"))
    page.get_by_label("Filter").fill("metrics.val_accuracy >= 0")
    page.get_by_role("button", name="Search").click()
    expect(row).to_be_visible()
    page.get_by_label("Filter").fill("metrics.val_accuracy >>")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#runs-error")).to_contain_text("filter:")
