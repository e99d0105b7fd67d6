"""Issue 4's journey in a real browser with a real worker: from a dataset version, train the tabular
trainer from the form, watch its curve grow live, open the debugger tab, train a second run with another
learning rate, and compare the two."""

import re

import pytest
from playwright.sync_api import expect

from datasets.tests.factories import make_iris_version
from studio.core.testing import member
from tests.browser.test_runs_journey import JOB_TIMEOUT_MS, wait_for_points
from tests.browser.test_team_journey import sign_in
from training.job_models import TrainingJob

pytestmark = [pytest.mark.browser, pytest.mark.integration]

EPOCHS = 12
RUN_URL = re.compile(r"/training/runs/(\d+)/$")


@pytest.fixture
def scientist_and_iris(transactional_db):
    version = make_iris_version()
    return member(version.dataset.project, username_prefix="tess"), version


def train_from_the_form(page, *, name: str, lr: str, epochs: int) -> int:
    page.get_by_label("Target column").select_option("species")
    page.locator("#hp-epochs").fill(str(epochs))
    page.locator("#hp-batch_size").fill("4")
    page.locator("#hp-lr").fill(lr)
    page.get_by_label("Run name").fill(name)
    page.locator("#start-training").click()
    expect(page).to_have_url(RUN_URL)
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    return int(RUN_URL.search(page.url).group(1))


def test_train_from_the_form_watch_it_live_debug_and_compare(
    scientist_and_iris, celery_worker_name, studio_server, open_context
):
    user, version = scientist_and_iris
    project = version.dataset.project
    page = open_context().new_page()
    sign_in(page, studio_server, user.username)

    # Pick the dataset: its version page leads to the training form with the version chosen
    page.goto(f"{studio_server}/projects/{project.pk}/datasets/versions/{version.pk}/")
    page.locator("#train-on-version").click()
    expect(page.get_by_label("Dataset version")).to_have_value(str(version.pk))
    expect(page.get_by_label("Trainer")).to_have_value("tabular_classification")
    # the form follows the trainer: a regression trainer offers numeric targets only (swapped in place)
    page.get_by_label("Trainer").select_option("tabular_regression")
    expect(page.locator('#train-target option[value="species"]')).to_have_count(0)
    expect(page.locator('#train-target option[value="petal_width"]')).to_have_count(1)
    page.get_by_label("Trainer").select_option("tabular_classification")
    expect(page.locator('#train-target option[value="species"]')).to_have_count(1)
    first_run = train_from_the_form(page, name="iris-form-a", lr="0.01", epochs=EPOCHS)

    # The curve grows in place while the job runs
    page.evaluate("window.__noReload = true")
    first = wait_for_points(page, lambda count: count > 0)
    assert first < EPOCHS, "the run finished before the page could watch it"
    wait_for_points(page, lambda count: count > first)
    assert page.evaluate("window.__noReload") is True

    # The debugger tab: a confusion matrix, the gradient norms and the insights
    page.locator("#debugger-tab").click()
    expect(page.locator("#confusion-matrix-chart .main-svg").first).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#debugger-gradient-chart .main-svg").first).to_be_visible()
    expect(page.locator("#run-insights")).to_be_visible()
    expect(page.locator("#run-status .badge")).to_have_text("finished", timeout=JOB_TIMEOUT_MS)

    # A second run from the form with another learning rate
    page.goto(f"{studio_server}/projects/{project.pk}/training/new/?dataset_version={version.pk}")
    second_run = train_from_the_form(page, name="iris-form-b", lr="0.05", epochs=3)
    expect(page.locator("#run-status .badge")).to_have_text("finished", timeout=JOB_TIMEOUT_MS)
    assert TrainingJob.objects.get(run_id=second_run).spec["hyperparameters"]["lr"] == 0.05

    # Compare the two from the runs list
    page.goto(f"{studio_server}/projects/{project.pk}/training/runs/")
    page.locator(f'input.run-select[value="{first_run}"]').check()
    page.locator(f'input.run-select[value="{second_run}"]').check()
    page.locator("#compare-runs").click()
    expect(page).to_have_url(re.compile(r"/training/runs/compare/\?runs="))
    header = page.locator("#compare-table thead")
    expect(header).to_contain_text("iris-form-a")
    expect(header).to_contain_text("iris-form-b")
    expect(page.locator('#compare-table tr[data-key="params.lr"]')).to_have_class(
        re.compile("compare-differs")
    )
    expect(page.locator('#compare-table tr[data-key="params.epochs"]')).to_contain_text(str(EPOCHS))
    page.wait_for_load_state("load")
    curve = '#compare-curves [data-metric-key="val_accuracy"] .studio-chart'
    expect(page.locator(curve)).to_have_attribute("data-rendered", "true", timeout=JOB_TIMEOUT_MS)
    assert page.evaluate(f"() => document.querySelector('{curve}').data.length") == 2
    parcoords = '#compare-parcoords [data-metric-key="val_accuracy"] .studio-chart'
    expect(page.locator(parcoords)).to_have_attribute("data-rendered", "true", timeout=JOB_TIMEOUT_MS)
