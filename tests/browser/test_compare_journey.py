"""A scientist compares two finished runs in a real browser: ticks them on the runs list (across two
searches), opens Compare, sees the differing param, both curves on one chart and the parallel-coordinates
chart, and switches the metric."""

import threading
import uuid

import pytest
from playwright.sync_api import expect

from studio.core.testing import MembershipFactory, ProjectFactory, UserFactory
from tests.browser.test_team_journey import sign_in
from training import tracking

pytestmark = [pytest.mark.browser]

CHART_TIMEOUT_MS = 15_000
DIMENSIONS = """(selector) => document.querySelector(selector).data[0].dimensions.map((axis) => axis.label)"""

TRACES = """(selector) => {
  const chart = document.querySelector(selector);
  if (!chart || chart.dataset.rendered !== "true") return [];
  return chart.data.map((trace) => trace.type + ":" + trace.name);
}"""


def finished_run(user, project, name, params, curves):
    experiment = tracking.experiment_get_or_create(user=user, project=project, name="sweep")
    run = tracking.run_create(user=user, project=project, experiment=experiment, name=name, params=params)
    for key, values in curves.items():
        batch = [{"key": key, "value": value, "step": step} for step, value in enumerate(values)]
        tracking.run_log_metrics(user=user, run=run, metrics=batch)
    return tracking.run_update_status(user=user, run=run, status="finished")


def elsewhere(make):
    """Run `make` in another thread: Playwright's event loop runs in this one, where the live events the
    tracking services publish cannot be sent."""
    from django.db import connection

    result = {}

    def target():
        try:
            result["value"] = make()
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    return result["value"]


@pytest.fixture
def sweep(transactional_db):
    return elsewhere(make_sweep)


def make_sweep():
    user = UserFactory(username=f"cleo-{uuid.uuid4().hex[:6]}")
    project = ProjectFactory(name="Sweep")
    MembershipFactory(project=project, user=user, role="scientist")
    slow = finished_run(
        user,
        project,
        "slow-lr",
        {"lr": "0.01", "optimizer": "adam"},
        {"val_loss": [0.9, 0.7, 0.6], "val_accuracy": [0.5, 0.6, 0.7]},
    )
    fast = finished_run(
        user,
        project,
        "fast-lr",
        {"lr": "0.1", "optimizer": "adam"},
        {"val_loss": [0.8, 0.5, 0.3], "val_accuracy": [0.6, 0.8, 0.9]},
    )
    return user, project, slow, fast


def test_compare_two_runs(sweep, studio_server, open_context):
    user, project, slow, fast = sweep
    page = open_context().new_page()
    sign_in(page, studio_server, user.username)
    page.goto(f"{studio_server}/projects/{project.pk}/training/runs/")
    compare = page.locator("#compare-runs")
    expect(compare).to_be_disabled()

    # Tick one run in one search and the other in another: the selection survives the searches
    page.get_by_label("Filter").fill("params.lr = '0.01'")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#runs-table tbody tr")).to_have_count(1)
    page.locator(f'input.run-select[value="{slow.pk}"]').check()
    expect(compare).to_be_disabled()
    page.get_by_label("Filter").fill("params.lr = '0.1'")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(f'#runs-table tr[data-run-id="{fast.pk}"]')).to_be_visible()
    page.locator(f'input.run-select[value="{fast.pk}"]').check()
    expect(page.locator("#compare-count")).to_have_text("2 selected")
    expect(compare).to_be_enabled()
    compare.click()

    # The table: run names as headers, only the differing param shown (and highlighted) by default
    expect(page).to_have_url(
        f"{studio_server}/projects/{project.pk}/training/runs/compare/?runs={slow.pk},{fast.pk}"
    )
    header = page.locator("#compare-table thead")
    expect(header).to_contain_text("slow-lr")
    expect(header).to_contain_text("fast-lr")
    lr_row = page.locator('#compare-table tr[data-key="params.lr"]')
    expect(lr_row).to_be_visible()
    expect(lr_row).to_have_class("compare-differs")
    expect(lr_row).to_contain_text("0.01")
    optimizer_row = page.locator('#compare-table tr[data-key="params.optimizer"]')
    expect(optimizer_row).to_be_hidden()
    page.get_by_label("Only differing rows").uncheck()
    expect(optimizer_row).to_be_visible()
    # the best val_loss (lower is better) is fast-lr's 0.3
    best = page.locator('#compare-table tr[data-key="metrics.val_loss"] td[data-best]')
    expect(best).to_have_count(1)
    expect(best).to_have_text("0.3000")

    # Both runs' curves on one overlaid chart per shared metric, and the parcoords chart
    curve = '#compare-curves [data-metric-key="val_accuracy"] .studio-chart'
    # plotly.min.js is large: on a busy machine the charts are drawn well after the table is shown
    page.wait_for_load_state("load")
    expect(page.locator(curve)).to_have_attribute("data-rendered", "true", timeout=CHART_TIMEOUT_MS)
    assert page.evaluate(TRACES, curve) == [f"scatter:slow-lr #{slow.pk}", f"scatter:fast-lr #{fast.pk}"]
    parcoords = '#compare-parcoords [data-metric-key="val_accuracy"] .studio-chart'
    expect(page.locator(parcoords)).to_have_attribute("data-rendered", "true", timeout=CHART_TIMEOUT_MS)
    assert page.evaluate(DIMENSIONS, parcoords) == ["params.lr", "metrics.val_accuracy"]
    expect(page.locator(f"{parcoords} .parcoords")).to_have_count(1)

    # The metric picker: one metric's curves alone, and the parcoords chart switches to it
    page.get_by_label("Metric").select_option("val_loss")
    expect(page.locator(curve)).to_be_hidden()
    loss_parcoords = '#compare-parcoords [data-metric-key="val_loss"] .studio-chart'
    expect(page.locator(loss_parcoords)).to_have_attribute("data-rendered", "true", timeout=CHART_TIMEOUT_MS)
    expect(page.locator(parcoords)).to_be_hidden()
    page.screenshot(path="/tmp/compare-page.png", full_page=True)
