"""A scientist's data journey in a real browser, with a real worker: upload a CSV with a progress bar,
see its profile charts, build a 3-step recipe with a live preview, apply it and follow the lineage."""

import io
import re
import zipfile

import pytest
from playwright.sync_api import expect

from studio.core.testing import MembershipFactory, ProjectFactory, UserFactory
from tests.browser.test_team_journey import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.integration]

JOB_TIMEOUT_MS = 120_000
CITIES = ["Paris", "Lyon", "Nice", "Lille", "Brest"]
UPLOAD_BYTES_PER_S = 1_500_000  # throttled in the browser so that the progress bar visibly moves


def write_orders_csv(path, rows: int = 60_000) -> None:
    """About 3 MB of orders: id, city, amount (0.00–999.99), returned (bool), note (text)."""
    with path.open("w") as out:
        out.write("id,city,amount,returned,note\n")
        for n in range(rows):
            amount = (n * 7919) % 100_000 / 100
            returned = "true" if n % 9 == 0 else "false"
            out.write(f"{n},{CITIES[n % 5]},{amount:.2f},{returned},order number {n} of the year\n")


def preview_rows(page) -> list[dict]:
    """The recipe builder's preview table as [{column: cell text}]."""
    return page.evaluate(
        """() => {
          const table = document.getElementById("preview-table");
          const names = [...table.tHead.rows[0].cells].map((th) => th.firstChild.textContent.trim());
          return [...table.tBodies[0].rows].map((tr) =>
            Object.fromEntries([...tr.cells].map((td, i) => [names[i], td.textContent])));
        }"""
    )


def wait_for_preview(page, after_steps: int) -> None:
    table = page.locator("#preview-table")
    expect(table).to_have_attribute("data-after-steps", str(after_steps))
    expect(table).to_have_attribute("data-state", "ready")


def add_step(page, step_type: str):
    page.get_by_label("Step type").select_option(step_type)
    page.get_by_role("button", name="Add step").click()
    return page.locator("#recipe-steps [data-step-index]").last


@pytest.fixture
def scientist(transactional_db):
    project = ProjectFactory(name="Retail")
    user = UserFactory(username="sam")
    MembershipFactory(project=project, user=user, role="scientist")
    return project, user


def test_upload_profile_recipe_and_lineage(
    scientist, studio_server, celery_worker_name, open_context, tmp_path
):
    project, _user = scientist
    csv_path = tmp_path / "orders.csv"
    write_orders_csv(csv_path)
    open_context.expected_statuses = {400}  # a bad filter and a step naming a missing column, on purpose
    page = open_context().new_page()
    sign_in(page, studio_server, "sam")

    # The scientist finds Datasets in the Prepare stage of the project
    page.goto(f"{studio_server}/projects/{project.pk}/")
    page.get_by_role("link", name="Datasets").click()
    expect(page.get_by_role("heading", name="Datasets")).to_be_visible()
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")

    # …uploads a CSV, watching the progress bar move to 100%
    page.get_by_label("File").set_input_files(csv_path)
    expect(page.get_by_label("Dataset name")).to_have_value("orders")
    page.evaluate(
        """() => {
          window.__uploadProgress = [];
          const bar = document.getElementById("upload-progress");
          new MutationObserver(() => window.__uploadProgress.push(Number(bar.getAttribute("aria-valuenow"))))
            .observe(bar, { attributes: true, attributeFilter: ["aria-valuenow"] });
        }"""
    )
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": UPLOAD_BYTES_PER_S},
    )
    page.get_by_role("button", name="Upload").click()
    progress = page.locator("#upload-progress")
    expect(progress).to_have_attribute("aria-valuenow", "100", timeout=60_000)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    seen = page.evaluate("window.__uploadProgress")
    assert seen[-1] == 100
    assert any(0 < value < 100 for value in seen), f"the bar never showed a partial upload: {seen}"

    # …and follows the conversion job live until it links to the new version
    job = page.locator("#job-list [data-job-id]").first
    expect(job).to_contain_text("orders")
    version_link = job.get_by_role("link", name="Open the new version")
    expect(version_link).to_be_visible(timeout=JOB_TIMEOUT_MS)
    version_link.click()
    expect(page.get_by_role("heading", name="orders v1")).to_be_visible()
    source_url = page.url
    assert re.search(r"/datasets/versions/\d+/$", source_url)

    # The preview grid pages through the rows, sorts by a column and filters with an expression
    grid = page.locator("#grid-table")
    expect(grid.locator("thead th")).to_have_count(5)
    expect(page.locator("#grid-status")).to_contain_text("of 60000")
    grid.get_by_role("button", name="Sort by amount").click()
    expect(grid).to_have_attribute("data-state", "ready")
    expect(grid.locator("thead th").nth(2)).to_have_attribute("aria-sort", "ascending")
    expect(grid.locator("tbody tr").first.locator("td").nth(2)).to_have_text("0")
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#grid-status")).to_have_text("Rows 51–100 of 60000")
    page.get_by_label("Filter expression").fill('city == "Nice" and amount >= 990')
    page.get_by_role("button", name="Filter", exact=True).click()
    expect(grid).to_have_attribute("data-state", "ready")
    expect(page.locator("#grid-status")).to_have_text(re.compile(r"^Rows 1–\d+ of \d+$"))
    cities = grid.locator("tbody tr td:nth-child(2)").all_text_contents()
    amounts = [float(text) for text in grid.locator("tbody tr td:nth-child(3)").all_text_contents()]
    assert cities
    assert set(cities) == {"Nice"}
    assert amounts == sorted(amounts)
    assert amounts[0] >= 990
    page.get_by_label("Filter expression").fill('open("/etc/passwd")')
    page.get_by_role("button", name="Filter", exact=True).click()
    expect(grid).to_have_attribute("data-state", "error")
    expect(page.locator("#grid-error")).to_contain_text("function 'open' is not allowed")

    # The Profile tab shows plotly charts (the profile job ran after the upload)
    page.get_by_role("tab", name="Profile").click()
    charts = page.locator("#profile-pane .js-plotly-plot")
    expect(charts.first).to_be_visible(timeout=JOB_TIMEOUT_MS)
    assert charts.count() >= 1
    expect(page.locator('#profile-stats tr[data-column="amount"]')).to_contain_text("numeric")

    # Re-running the profile shows its progress, then the tab reloads itself with fresh charts
    page.get_by_role("button", name="Re-run profile").click()
    expect(page.get_by_role("alert")).to_contain_text("The profile is being computed again")
    expect(page.get_by_role("tab", name="Profile")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#profile-content")).to_have_attribute(
        "data-profile-status", "done", timeout=JOB_TIMEOUT_MS
    )
    expect(charts.first).to_be_visible()
    assert charts.count() >= 1
    page.screenshot(path=str(tmp_path / "profile.png"), full_page=True)

    # The recipe builder previews the data after each step
    page.get_by_role("link", name="Build a recipe").click()
    expect(page.get_by_role("heading", name="New recipe")).to_be_visible()
    wait_for_preview(page, 0)
    expect(page.locator("#preview-table thead th")).to_have_count(5)

    # step 1: drop a column
    step = add_step(page, "drop")
    step.get_by_label("Columns").select_option(["note"])
    wait_for_preview(page, 1)
    headers = page.locator("#preview-table thead th")
    expect(headers).to_have_count(4)
    assert "note" not in " ".join(headers.all_text_contents())

    # step 2: filter rows; a missing column is named on the step first
    step = add_step(page, "filter")
    step.get_by_label("Keep rows where").fill("price > 900")
    expect(step.locator("[data-step-error]")).to_contain_text("price")
    step.get_by_label("Keep rows where").fill("amount > 900")
    wait_for_preview(page, 2)
    rows = preview_rows(page)
    assert rows
    assert all(float(row["amount"]) > 900 for row in rows)
    expect(step.locator("[data-step-error]")).to_be_hidden()

    # step 3: derive a column
    step = add_step(page, "derive")
    step.get_by_label("New column").fill("amount_k")
    step.get_by_label("Expression").fill("amount / 1000")
    wait_for_preview(page, 3)
    rows = preview_rows(page)
    assert rows
    assert all(abs(float(row["amount_k"]) - float(row["amount"]) / 1000) < 1e-9 for row in rows)

    # Saved, then applied by a worker: a new version whose lineage links back to its parent
    page.get_by_label("Recipe name").fill("big orders")
    page.get_by_role("button", name="Save recipe").click()
    expect(page.locator("#save-status")).to_contain_text("Saved recipe big orders")
    page.get_by_role("button", name="Apply").click()
    new_version = page.locator("#apply-jobs").get_by_role("link", name="Open the new version")
    expect(new_version).to_be_visible(timeout=JOB_TIMEOUT_MS)
    new_version.click()
    expect(page.get_by_role("heading", name="orders v2")).to_be_visible()
    parent = page.locator("#lineage-parent")
    expect(parent).to_have_text("orders v1")
    expect(page.locator("#lineage-recipe")).to_contain_text("big orders")
    expect(page.locator("#schema-table")).to_contain_text("amount_k")
    parent.click()
    assert page.url == source_url
    expect(page.locator('#lineage [data-lineage="child"]')).to_have_text("orders v2")

    # The recipes list offers to re-apply the saved recipe
    page.get_by_role("link", name="Recipes").first.click()
    expect(page.locator('#recipes-table tr[data-recipe="big orders"]')).to_contain_text("orders")


def test_bad_uploads_name_the_problem(scientist, studio_server, celery_worker_name, open_context, tmp_path):
    project, _user = scientist
    page = open_context().new_page()
    open_context.expected_statuses = {400}  # the empty upload is refused by the API on purpose
    sign_in(page, studio_server, "sam")
    page.goto(f"{studio_server}/projects/{project.pk}/datasets/")

    # An empty file is refused at once
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    page.get_by_label("File").set_input_files(empty)
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-error")).to_contain_text("empty")

    # A zip renamed .csv fails its conversion job, which says what the file really is
    fake = tmp_path / "sales.csv"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("sales.txt", "not really a csv\n" * 100)
    fake.write_bytes(buffer.getvalue())
    page.get_by_label("File").set_input_files(fake)
    page.get_by_label("Dataset name").fill("sales")
    page.get_by_role("button", name="Upload").click()
    job = page.locator("#job-list [data-job-id]").first
    expect(job.get_by_role("alert")).to_contain_text("sales.csv looks like", timeout=JOB_TIMEOUT_MS)
    expect(job.locator('[data-job-field="status"]')).to_have_text("failed")

    # Nothing was created
    page.reload()
    expect(page.locator("#datasets-table tbody")).to_contain_text("No datasets yet")


def test_dataset_page_edit_and_delete(scientist, studio_server, open_context):
    from datasets.tests.factories import DEFAULT_TABLE, DatasetFactory, make_version

    project, _user = scientist
    dataset = DatasetFactory(project=project, name="customers")
    first = make_version(dataset=dataset)
    second = make_version(dataset=dataset, table={**DEFAULT_TABLE, "age": [1, 2, 3, 4, 5, 6]}, parent=first)
    page = open_context().new_page()
    sign_in(page, studio_server, "sam")
    page.goto(f"{studio_server}/projects/{project.pk}/datasets/{dataset.pk}/")
    expect(page.locator("#versions-table tbody tr")).to_have_count(2)
    expect(page.locator('#versions-table tr[data-version="2"]')).to_contain_text("customers v1")

    # A writer edits the description
    page.get_by_role("button", name="Edit").click()
    page.get_by_label("Description").fill("Customers and their churn, 2026")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("Saved.")
    expect(page.locator("#dataset-description")).to_have_text("Customers and their churn, 2026")

    # …deletes the newest version after confirming
    page.goto(f"{studio_server}/projects/{project.pk}/datasets/versions/{second.pk}/")
    page.get_by_role("button", name="Delete version").click()
    page.locator("#confirm-delete-version").click()
    expect(page.get_by_role("alert")).to_contain_text("customers v2 was deleted")
    expect(page.locator("#versions-table tbody tr")).to_have_count(1)

    # …and then the dataset: its page is gone, the list says so
    page.get_by_role("button", name="Delete dataset").click()
    page.locator("#confirm-delete-dataset").click()
    expect(page.get_by_role("alert")).to_contain_text("Dataset customers and its files were deleted")
    expect(page.locator("#datasets-table tbody")).to_contain_text("No datasets yet")


def test_a_viewer_sees_data_but_no_write_controls(transactional_db, studio_server, open_context):
    from datasets.tests.factories import DatasetFactory, make_version

    project = ProjectFactory(name="Shared data")
    viewer = UserFactory(username="vic")
    MembershipFactory(project=project, user=viewer, role="viewer")
    version = make_version(dataset=DatasetFactory(project=project, name="sales"))
    page = open_context().new_page()
    sign_in(page, studio_server, "vic")
    page.goto(f"{studio_server}/projects/{project.pk}/datasets/")
    expect(page.locator('#datasets-table tr[data-dataset="sales"]')).to_contain_text("v1")
    expect(page.locator("#upload-form")).to_have_count(0)
    page.goto(f"{studio_server}/projects/{project.pk}/datasets/versions/{version.pk}/")
    expect(page.locator("#grid-table")).to_have_attribute("data-state", "ready")
    expect(page.locator("#grid-table tbody tr")).to_have_count(6)
    expect(page.get_by_role("button", name="Delete version")).to_have_count(0)
    expect(page.get_by_role("link", name="Build a recipe")).to_have_count(0)
