"""Issue 5's journey in a real browser with a real worker: create a study from the form (a bad range is
refused with its message first), then watch its trials appear and finish live on the study page."""

import re

import pytest
from playwright.sync_api import expect

from datasets.tests.factories import make_iris_version
from studio.core.testing import member
from tests.browser.test_runs_journey import JOB_TIMEOUT_MS
from tests.browser.test_team_journey import sign_in
from training.study_models import Study

pytestmark = [pytest.mark.browser, pytest.mark.integration]

STUDY_URL = re.compile(r"/training/studies/(\d+)/$")


@pytest.fixture
def scientist_and_iris(transactional_db):
    version = make_iris_version()
    return member(version.dataset.project, username_prefix="sam"), version


def test_create_a_study_from_the_form_and_watch_its_trials_live(
    scientist_and_iris, celery_worker_name, studio_server, open_context
):
    user, version = scientist_and_iris
    project = version.dataset.project
    open_context.expected_statuses.add(400)  # the refused form answers 400 on purpose
    page = open_context().new_page()
    sign_in(page, studio_server, user.username)

    # The Studies page is in the Train stage of the navigation
    page.goto(f"{studio_server}/projects/{project.pk}/")
    page.get_by_role("link", name="Studies").click()
    expect(page.get_by_role("heading", name="Studies")).to_be_visible()
    page.locator("#study-new-link").click()

    # Fill the form; the search space's range is inverted first
    page.get_by_label("Name", exact=True).fill("iris lr")
    page.get_by_label("Trainer").select_option("tabular_classification")
    expect(page.get_by_label("Dataset version")).to_have_value(str(version.pk))
    page.get_by_label("Target column").fill("species")
    page.get_by_label("Objective metric").fill("val_loss")
    page.get_by_label("Direction").select_option("minimize")
    page.get_by_label("Pruner").select_option("median")
    page.locator('[name="space-0-name"]').fill("lr")
    page.locator('[name="space-0-type"]').select_option("float")
    page.locator('[name="space-0-low"]').fill("0.1")
    page.locator('[name="space-0-high"]').fill("0.001")
    page.locator('[name="space-0-log"]').check()
    # a second hyperparameter from a row added by the editor
    page.locator("#study-space-add").click()
    expect(page.locator(".study-space-row")).to_have_count(4)
    page.locator('[name="space-3-name"]').fill("lr_schedule")
    page.locator('[name="space-3-type"]').select_option("categorical")
    page.locator('[name="space-3-choices"]').fill("constant, cosine")
    page.get_by_label("Trials", exact=True).fill("2")
    page.get_by_label("Trials at once").fill("1")
    page.get_by_label("Fixed hyperparameters (JSON)").fill('{"epochs": 3, "batch_size": 16}')
    page.locator("#study-submit").click()
    expect(page.locator("#study-error")).to_contain_text(
        "search_space: lr: inverted range (low 0.1 > high 0.001); low must be below high"
    )
    assert not Study.objects.filter(project=project).exists()

    # the form kept what was typed: fix the range and start
    expect(page.locator('[name="space-3-name"]')).to_have_value("lr_schedule")
    page.locator('[name="space-0-low"]').fill("0.001")
    page.locator('[name="space-0-high"]').fill("0.1")
    page.locator("#study-submit").click()
    expect(page).to_have_url(STUDY_URL)
    expect(page.get_by_role("heading", name="iris lr")).to_be_visible()
    study = Study.objects.get(project=project)
    assert study.search_space[1] == {
        "name": "lr_schedule",
        "type": "categorical",
        "choices": ["constant", "cosine"],
    }

    # Trials appear and finish without a reload: the page follows the study's live events
    page.evaluate("window.__noReload = true")
    trials = page.locator("#study-trials tbody tr[data-trial]")
    expect(trials).to_have_count(2, timeout=JOB_TIMEOUT_MS * 2)
    expect(
        page.locator('#study-trials tr[data-state="complete"], #study-trials tr[data-state="pruned"]')
    ).to_have_count(2, timeout=JOB_TIMEOUT_MS * 2)
    expect(page.locator("#study-summary")).to_have_attribute(
        "data-status", "finished", timeout=JOB_TIMEOUT_MS
    )
    assert page.evaluate("window.__noReload") is True
    expect(page.locator("#study-history .main-svg").first).to_be_visible()
    expect(page.locator("#study-intermediate .main-svg").first).to_be_visible()

    # The best trial links to its run
    page.locator("#study-best-run").click()
    expect(page).to_have_url(re.compile(r"/training/runs/\d+/$"))
    expect(page.locator("#run-status .badge")).to_have_text("finished")
