"""Plotly figures built from a profile: plain JSON dicts with traces (no database needed)."""

import json
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datasets.charts import (
    column_histogram,
    correlation_heatmap,
    missing_bar,
    profile_figures,
    top_values_bar,
)
from datasets.profiling import profile_parquet


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    path = tmp_path_factory.mktemp("charts") / "data.parquet"
    table = pa.table(
        {
            "age": pa.array([21.0, 35.0, None, 42.0, 35.0, 60.0]),
            "income": pa.array([1.0, 2.5, 3.0, None, 2.0, 5.0]),
            "city": pa.array(["Oslo", "Rome", "Oslo", None, "Lima", "Oslo"]),
            "active": pa.array([True, False, True, True, None, True]),
            "joined": pa.array(
                [datetime(2024, month, 1, tzinfo=UTC) for month in range(1, 7)], type=pa.timestamp("us")
            ),
            "photo": pa.array(["a/1.jpg", "a/2.jpg", "b/3.png", "b/4.jpg", "c/5.jpg", None]),
            "note": pa.array(["hi", "hello", None, "hi", "hey", "hi"]),
            'we"ird name': pa.array([None] * 6, type=pa.float64()),
        }
    )
    pq.write_table(table, path)
    schema = {
        "age": "numeric",
        "income": "numeric",
        "city": "categorical",
        "active": "boolean",
        "joined": "datetime",
        "photo": "image",
        "note": "text",
        'we"ird name': "numeric",
    }
    return profile_parquet(path, schema)


def assert_figure(figure):
    assert isinstance(figure, dict)
    assert figure["data"], "a figure needs at least one trace"
    assert figure["layout"]["template"]["layout"]["plot_bgcolor"] == "white"  # plotly_white
    # Plain json, no NaN: what the page's json_script and plotly.js read.
    assert json.loads(json.dumps(figure, allow_nan=False)) == figure


def test_column_histogram_of_a_numeric_column(profile):
    figure = column_histogram(profile, "age")

    assert_figure(figure)
    bar = figure["data"][0]
    assert bar["type"] == "bar"
    assert sum(bar["y"]) == 5
    histogram = next(column for column in profile["columns"] if column["name"] == "age")["histogram"]
    assert bar["x"] == histogram["edges"][:-1]
    assert bar["width"][0] == pytest.approx(histogram["edges"][1] - histogram["edges"][0])
    assert figure["layout"]["height"] <= 300
    assert figure["layout"]["showlegend"] is False


def test_column_histogram_of_a_datetime_column(profile):
    figure = column_histogram(profile, "joined")

    assert_figure(figure)
    bar = figure["data"][0]
    assert sum(bar["y"]) == 6
    # Five months in at most 30 buckets: weeks (Mondays), each bar 7 days wide, in milliseconds.
    assert bar["x"][0] == "2024-01-01T00:00:00"
    assert bar["width"][0] == 7 * 24 * 3600 * 1000


def test_column_histogram_refuses_other_types_and_unknown_columns(profile):
    with pytest.raises(ValueError, match="categorical"):
        column_histogram(profile, "city")
    with pytest.raises(KeyError):
        column_histogram(profile, "nope")


def test_top_values_bar(profile):
    figure = top_values_bar(profile, "city")

    assert_figure(figure)
    bar = figure["data"][0]
    assert bar["orientation"] == "h"
    assert bar["y"] == ["Oslo", "Lima", "Rome"]  # ties in the order of their values
    assert bar["x"] == [3, 1, 1]
    assert figure["layout"]["yaxis"]["autorange"] == "reversed"


def test_top_values_bar_of_boolean_text_and_image_columns(profile):
    assert top_values_bar(profile, "active")["data"][0]["y"] == ["True", "False"]
    assert top_values_bar(profile, "note")["data"][0]["x"][0] == 3
    extensions = top_values_bar(profile, "photo")
    assert_figure(extensions)
    assert extensions["data"][0]["y"] == ["jpg", "png"]


def test_top_values_bar_adds_the_rest_as_other(tmp_path):
    path = tmp_path / "letters.parquet"
    pq.write_table(pa.table({"letter": pa.array(list("aaabbcdef"))}), path)
    profile = profile_parquet(path, {"letter": "categorical"}, top_k=2)

    bar = top_values_bar(profile, "letter")["data"][0]

    assert bar["y"] == ["a", "b", "(other)"]
    assert bar["x"] == [3, 2, 4]


def test_missing_bar(profile):
    figure = missing_bar(profile)

    assert_figure(figure)
    bar = figure["data"][0]
    assert len(bar["x"]) == 8
    assert bar["y"][0] == pytest.approx(100 / 6)
    assert bar["y"][-1] == 100.0


def test_correlation_heatmap(profile):
    figure = correlation_heatmap(profile)

    assert_figure(figure)
    heatmap = figure["data"][0]
    assert heatmap["type"] == "heatmap"
    assert heatmap["x"] == ["age", "income", 'we"ird name']
    assert heatmap["zmin"] == -1
    assert heatmap["zmax"] == 1
    assert heatmap["z"][0][0] == 1.0
    assert heatmap["z"][2][2] is None  # an all-null column: a gap, not NaN


def test_profile_figures(profile):
    figures = profile_figures(profile)

    assert list(figures) == [
        "missing",
        "correlation",
        "histogram: age",
        "histogram: income",
        "top values: city",
        "top values: active",
        "histogram: joined",
        "top values: photo",
        "top values: note",
    ]  # the all-null column has nothing to draw
    for figure in figures.values():
        assert_figure(figure)
    assert json.dumps(figures, allow_nan=False)


def test_profile_figures_of_an_empty_file(tmp_path):
    path = tmp_path / "empty.parquet"
    pq.write_table(
        pa.table({"a": pa.array([], type=pa.float64()), "b": pa.array([], type=pa.string())}), path
    )
    profile = profile_parquet(path, {"a": "numeric", "b": "categorical"})

    figures = profile_figures(profile)

    assert list(figures) == ["missing"]
    assert_figure(figures["missing"])
    assert profile_figures({}) == {}
    # Asked for anyway, the charts of empty columns are still valid figures.
    assert_figure(column_histogram(profile, "a"))
    assert_figure(top_values_bar(profile, "b"))
