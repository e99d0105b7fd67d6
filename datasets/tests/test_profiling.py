"""The profile of small Parquet files with known contents (no database: run with `-p no:django` too)."""

import json
import math
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datasets.profiling import profile_parquet


def write(tmp_path, columns: dict, name="data.parquet", **options):
    path = tmp_path / name
    pq.write_table(pa.table(columns), path, **options)
    return path


def column(profile, name):
    return next(item for item in profile["columns"] if item["name"] == name)


def assert_plain_json(profile):
    # allow_nan=False: NaN and infinities must have become None.
    assert json.loads(json.dumps(profile, allow_nan=False)) == profile


def test_known_values(tmp_path):
    # given
    path = write(
        tmp_path,
        {
            "x": pa.array([1.0, 2.0, 3.0, 4.0, None, 6.0, 7.0, 8.0, 9.0, 10.0]),
            "double_x": pa.array([3.0, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0, 17.0, 19.0, 21.0]),
            "minus_x": pa.array([-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0, -8.0, -9.0, -10.0]),
            "code": pa.array([1, 1, 2, 2, 2, 3, 3, 3, 3, None], type=pa.int64()),
            "city": pa.array(["Oslo", "Rome", "Oslo", None, "Lima", "Oslo", "Rome", "Oslo", None, "Oslo"]),
        },
    )
    schema = {
        "x": "numeric",
        "double_x": "numeric",
        "minus_x": "numeric",
        "code": "numeric",
        "city": "categorical",
    }

    # when
    profile = profile_parquet(path, schema)

    # then
    assert profile["row_count"] == 10
    assert profile["column_count"] == 5
    assert profile["missing_cell_count"] == 4
    assert profile["missing_cell_percent"] == pytest.approx(8.0)
    x = column(profile, "x")
    assert x["type"] == "numeric"
    assert (x["count"], x["missing_count"], x["missing_percent"]) == (9, 1, 10.0)
    assert (x["min"], x["max"]) == (1.0, 10.0)
    assert x["mean"] == pytest.approx(50 / 9)
    assert x["std"] == pytest.approx(np.std([1, 2, 3, 4, 6, 7, 8, 9, 10], ddof=1))
    assert x["quantiles"]["p50"] == pytest.approx(6.0)
    assert x["quantiles"]["p25"] == pytest.approx(3.0)
    assert x["quantiles_are_approximate"] is False
    assert x["distinct_count"] == 9
    assert x["distinct_is_approximate"] is False
    assert x["infinite_count"] == 0
    histogram = x["histogram"]
    assert len(histogram["counts"]) == 30
    assert len(histogram["edges"]) == 31
    assert (histogram["edges"][0], histogram["edges"][-1]) == (1.0, 10.0)
    assert sum(histogram["counts"]) == x["count"]
    expected_counts, expected_edges = np.histogram([1, 2, 3, 4, 6, 7, 8, 9, 10], bins=30)
    assert histogram["counts"] == expected_counts.tolist()
    assert histogram["edges"] == pytest.approx(expected_edges.tolist())

    code = column(profile, "code")
    # A small integer range gets one bin per value, centred on it.
    assert code["histogram"]["edges"] == [0.5, 1.5, 2.5, 3.5]
    assert code["histogram"]["counts"] == [2, 3, 4]
    assert (code["min"], code["max"], code["distinct_count"]) == (1, 3, 3)

    city = column(profile, "city")
    assert (city["count"], city["missing_count"], city["distinct_count"]) == (8, 2, 3)
    assert city["distinct_is_approximate"] is False
    top = city["top_values"]
    assert [(item["value"], item["count"]) for item in top["values"]] == [
        ("Oslo", 5),
        ("Rome", 2),
        ("Lima", 1),
    ]
    assert top["values"][0]["percent"] == pytest.approx(50.0)
    assert top["other_count"] == 0

    correlation = profile["correlation"]
    assert correlation["columns"] == ["x", "double_x", "minus_x", "code"]
    assert correlation["sample_fraction"] == 1.0
    matrix = {
        (a, b): value
        for a, row in zip(correlation["columns"], correlation["matrix"], strict=True)
        for b, value in zip(correlation["columns"], row, strict=True)
    }
    assert matrix["x", "double_x"] == pytest.approx(1.0)
    assert matrix["double_x", "x"] == pytest.approx(1.0)
    assert matrix["x", "minus_x"] == pytest.approx(-1.0)
    assert matrix["x", "x"] == 1.0
    assert profile["duplicate_row_count"] == 0
    assert profile["approximations"] == []
    assert_plain_json(profile)


def test_top_values_keep_the_k_largest_and_count_the_rest(tmp_path):
    values = ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 2 + ["e"]
    path = write(tmp_path, {"letter": pa.array(values)})

    profile = profile_parquet(path, {"letter": "categorical"}, top_k=2)

    top = column(profile, "letter")["top_values"]
    assert [(item["value"], item["count"]) for item in top["values"]] == [("a", 5), ("b", 4)]
    assert top["other_count"] == 6
    assert column(profile, "letter")["distinct_count"] == 5


def test_an_all_null_column(tmp_path):
    path = write(
        tmp_path,
        {
            "empty_number": pa.array([None] * 4, type=pa.float64()),
            "empty_label": pa.array([None] * 4, type=pa.string()),
            "empty_time": pa.array([None] * 4, type=pa.timestamp("us")),
            "y": pa.array([1.0, 2.0, 3.0, 4.0]),
        },
    )
    schema = {
        "empty_number": "numeric",
        "empty_label": "categorical",
        "empty_time": "datetime",
        "y": "numeric",
    }

    profile = profile_parquet(path, schema)

    number = column(profile, "empty_number")
    assert (number["count"], number["missing_count"], number["missing_percent"]) == (0, 4, 100.0)
    assert number["min"] is None
    assert number["max"] is None
    assert number["mean"] is None
    assert number["std"] is None
    assert number["quantiles"] == {"p05": None, "p25": None, "p50": None, "p75": None, "p95": None}
    assert number["histogram"] == {"edges": [], "counts": []}
    assert number["distinct_count"] == 0
    label = column(profile, "empty_label")
    assert label["top_values"] == {"values": [], "other_count": 0}
    assert label["distinct_count"] == 0
    moment = column(profile, "empty_time")
    assert moment["min"] is None
    assert moment["histogram"]["counts"] == []
    # No pair of values: no correlation, and the column's own diagonal is unknown too.
    matrix = profile["correlation"]["matrix"]
    assert matrix[0] == [None, None]
    assert matrix[1][1] == 1.0
    assert_plain_json(profile)


def test_an_empty_file(tmp_path):
    path = write(
        tmp_path,
        {
            "a": pa.array([], type=pa.float64()),
            "b": pa.array([], type=pa.string()),
            "c": pa.array([], type=pa.bool_()),
            "d": pa.array([], type=pa.int32()),
            "e": pa.array([], type=pa.timestamp("us")),
            "f": pa.array([], type=pa.string()),
        },
    )
    schema = {
        "a": "numeric",
        "b": "categorical",
        "c": "boolean",
        "d": "numeric",
        "e": "datetime",
        "f": "image",
    }

    profile = profile_parquet(path, schema)

    assert profile["row_count"] == 0
    assert profile["column_count"] == 6
    assert profile["missing_cell_count"] == 0
    assert profile["missing_cell_percent"] == 0.0
    assert profile["duplicate_row_count"] == 0
    for item in profile["columns"]:
        assert item["count"] == 0
        assert item["missing_percent"] == 0.0
    assert column(profile, "a")["histogram"] == {"edges": [], "counts": []}
    assert column(profile, "c")["top_values"] == {"values": [], "other_count": 0}
    assert profile["correlation"]["matrix"] == [[None, None], [None, None]]
    assert_plain_json(profile)


def test_datetime_columns(tmp_path):
    # Aware datetimes, stored as UTC wall-clock times in "seen_at" and with their zone in "zoned".
    days = [datetime(2024, 1, day, 12, 30, tzinfo=UTC) for day in range(1, 11)]
    path = write(
        tmp_path,
        {
            "seen_at": pa.array([*days, None], type=pa.timestamp("us")),
            "zoned": pa.array([*days, None], type=pa.timestamp("us", tz="UTC")),
            "day": pa.array([*(moment.date() for moment in days), date(2024, 3, 1)], type=pa.date32()),
            "as_text": pa.array([*(moment.strftime("%Y-%m-%d %H:%M") for moment in days), "not a date"]),
        },
    )
    schema = {"seen_at": "datetime", "zoned": "datetime", "day": "datetime", "as_text": "datetime"}

    profile = profile_parquet(path, schema, bins=10)

    seen = column(profile, "seen_at")
    assert (seen["count"], seen["missing_count"], seen["distinct_count"]) == (10, 1, 10)
    assert seen["min"] == "2024-01-01T12:30:00"
    assert seen["max"] == "2024-01-10T12:30:00"
    histogram = seen["histogram"]
    assert histogram["interval"] == "1 day"
    assert histogram["edges"][0] == "2024-01-01T00:00:00"
    assert histogram["edges"][-1] == "2024-01-11T00:00:00"
    assert histogram["counts"] == [1] * 10
    assert len(histogram["edges"]) == len(histogram["counts"]) + 1
    # With the default 30 bins, the finest calendar unit with at most 30 buckets over 9 days:
    default = column(profile_parquet(path, schema), "seen_at")["histogram"]
    assert default["interval"] == "12 hours"
    assert default["edges"][:2] == ["2024-01-01T12:00:00", "2024-01-02T00:00:00"]
    assert sum(default["counts"]) == 10
    zoned = column(profile, "zoned")
    assert (zoned["min"], zoned["max"]) == (seen["min"], seen["max"])
    assert zoned["histogram"]["counts"] == histogram["counts"]
    day = column(profile, "day")
    assert (day["min"], day["max"]) == ("2024-01-01T00:00:00", "2024-03-01T00:00:00")
    assert day["histogram"]["interval"] == "1 week"
    assert sum(day["histogram"]["counts"]) == 11
    text = column(profile, "as_text")
    # Text that does not parse as a timestamp counts as missing.
    assert (text["count"], text["missing_count"]) == (10, 1)
    assert text["min"] == seen["min"]
    assert_plain_json(profile)


def test_a_long_datetime_range_gets_calendar_buckets(tmp_path):
    moments = [datetime(year, 6, 15, tzinfo=UTC) for year in range(1990, 2024)]
    path = write(tmp_path, {"t": pa.array(moments, type=pa.timestamp("us", tz="UTC"))})

    histogram = column(profile_parquet(path, {"t": "datetime"}), "t")["histogram"]

    assert histogram["interval"] == "5 years"
    assert histogram["edges"][0] == "1990-01-01T00:00:00"
    assert sum(histogram["counts"]) == len(moments)
    assert len(histogram["counts"]) <= 30


def test_boolean_columns(tmp_path):
    path = write(
        tmp_path,
        {
            "flag": pa.array([True, False, True, True, None, True]),
            "always": pa.array([True, True, True, True, True, True]),
            "yes_no": pa.array(["true", "false", "false", None, "maybe", "true"]),
        },
    )

    profile = profile_parquet(path, {"flag": "boolean", "always": "boolean", "yes_no": "boolean"})

    flag = column(profile, "flag")
    assert (flag["count"], flag["missing_count"], flag["true_count"], flag["false_count"]) == (5, 1, 4, 1)
    assert flag["distinct_count"] == 2
    assert [(item["value"], item["count"]) for item in flag["top_values"]["values"]] == [
        (True, 4),
        (False, 1),
    ]
    assert flag["top_values"]["values"][0]["percent"] == pytest.approx(400 / 6)
    always = column(profile, "always")
    assert always["distinct_count"] == 1
    assert always["top_values"]["values"] == [{"value": True, "count": 6, "percent": 100.0}]
    yes_no = column(profile, "yes_no")
    assert (yes_no["count"], yes_no["true_count"], yes_no["false_count"]) == (4, 2, 2)
    assert_plain_json(profile)


def test_names_with_spaces_and_quotes(tmp_path):
    odd = 'the "odd" one\'s column'
    label = "label; DROP TABLE x; --"
    path = write(
        tmp_path,
        {
            odd: pa.array([1.0, 2.0, 3.0, 4.0]),
            "with space": pa.array([2.0, 4.0, 6.0, 8.0]),
            label: pa.array(["it's", 'say "hi"', "it's", None]),
        },
    )

    profile = profile_parquet(path, {odd: "numeric", "with space": "numeric", label: "categorical"})

    assert [item["name"] for item in profile["columns"]] == [odd, "with space", label]
    assert column(profile, odd)["mean"] == pytest.approx(2.5)
    assert sum(column(profile, odd)["histogram"]["counts"]) == 4
    top = column(profile, label)["top_values"]["values"]
    assert [(item["value"], item["count"]) for item in top] == [("it's", 2), ('say "hi"', 1)]
    assert profile["correlation"]["columns"] == [odd, "with space"]
    assert profile["correlation"]["matrix"][0][1] == pytest.approx(1.0)


def test_nan_and_infinities(tmp_path):
    path = write(
        tmp_path,
        {
            "v": pa.array([1.0, float("nan"), 3.0, float("inf"), None, 5.0, float("-inf")]),
            "w": pa.array([10.0, 0.0, 30.0, 0.0, 0.0, 50.0, 0.0]),
            "gaps": pa.array([1.0, float("nan"), 3.0, 4.0, float("nan"), 6.0, 7.0]),
        },
    )

    profile = profile_parquet(path, {"v": "numeric", "w": "numeric", "gaps": "numeric"})

    v = column(profile, "v")
    # NaN counts as missing, as in pandas; infinities are values, but left out of the statistics.
    assert (v["count"], v["missing_count"], v["infinite_count"]) == (5, 2, 2)
    assert (v["min"], v["max"], v["mean"]) == (1.0, 5.0, 3.0)
    assert v["quantiles"]["p50"] == 3.0
    assert sum(v["histogram"]["counts"]) == 3
    assert v["distinct_count"] == 5
    gaps = column(profile, "gaps")
    assert (gaps["count"], gaps["missing_count"], gaps["infinite_count"]) == (5, 2, 0)
    assert (gaps["min"], gaps["max"], gaps["mean"]) == (1.0, 7.0, 4.2)
    assert gaps["distinct_count"] == 5
    # Only the rows where both are finite pair up: (1, 10), (3, 30), (5, 50).
    assert profile["correlation"]["matrix"][0][1] == pytest.approx(1.0)
    assert_plain_json(profile)


def test_numbers_stored_as_text_and_decimals(tmp_path):
    path = write(
        tmp_path,
        {
            "amount": pa.array(["1.5", "2.5", "n/a", None, "6"]),
            "price": pa.array([1, 2, 3, 4, 5], type=pa.decimal128(10, 2)),
        },
    )

    profile = profile_parquet(path, {"amount": "numeric", "price": "numeric"})

    amount = column(profile, "amount")
    assert (amount["count"], amount["missing_count"]) == (3, 2)
    assert amount["mean"] == pytest.approx(10 / 3)
    price = column(profile, "price")
    assert (price["min"], price["max"], price["mean"]) == (1.0, 5.0, 3.0)
    assert_plain_json(profile)


def test_text_and_image_columns(tmp_path):
    path = write(
        tmp_path,
        {
            "review": pa.array(["good", "really bad", "", None, "good"]),
            "image": pa.array(["cats/a.JPG", "cats/b.jpg", "dogs/c.png", "dogs/readme", None]),
        },
    )

    profile = profile_parquet(path, {"review": "text", "image": "image"})

    review = column(profile, "review")
    assert review["length"] == {"min": 0, "max": 10, "mean": pytest.approx(18 / 4)}
    assert review["top_values"]["values"][0] == {"value": "good", "count": 2, "percent": 40.0}
    assert review["distinct_count"] == 3
    image = column(profile, "image")
    assert (image["count"], image["distinct_count"]) == (4, 4)
    extensions = [(item["value"], item["count"]) for item in image["top_extensions"]["values"]]
    assert extensions == [("jpg", 2), ("(none)", 1), ("png", 1)]
    assert "top_values" not in image


def test_duplicate_rows(tmp_path):
    path = write(
        tmp_path, {"a": pa.array([1, 1, 2, 1, None, None]), "b": pa.array(["x", "x", "x", "y", None, None])}
    )

    profile = profile_parquet(path, {"a": "numeric", "b": "categorical"})

    assert profile["duplicate_row_count"] == 2
    assert profile["duplicate_row_percent"] == pytest.approx(100 * 2 / 6)
    assert profile["duplicates_are_approximate"] is False
    assert (
        profile_parquet(path, {"a": "numeric", "b": "categorical"}, duplicates=False)["duplicate_row_count"]
        is None
    )


def test_large_files_use_a_sample_and_say_so(tmp_path, monkeypatch):
    # given: 20,000 rows; above max(sample_rows, exact_max_rows), the sample holds 1 row in 10
    rng = np.random.default_rng(7)
    rows = 20_000
    x = rng.normal(size=rows)
    codes = rng.integers(0, 5, size=rows)
    path = write(
        tmp_path,
        {
            "x": pa.array(x),
            "y": pa.array(2 * x + rng.normal(scale=0.1, size=rows)),
            "code": pa.array(codes),
            "id": pa.array(np.repeat(np.arange(5000), 4)),  # 5,000 values, each 4 times
            "label": pa.array(rng.choice(["a", "b", "c"], size=rows)),
        },
        row_group_size=3000,
    )
    schema = {"x": "numeric", "y": "numeric", "code": "numeric", "id": "numeric", "label": "categorical"}

    # when
    profile = profile_parquet(path, schema, sample_rows=2000, exact_max_rows=100)

    # then
    assert profile["row_group_count"] == 7
    assert profile["sample"]["fraction"] == pytest.approx(0.1)
    assert profile["sample"]["rows"] == pytest.approx(2000, rel=0.1)
    assert profile["correlation"]["sample_fraction"] == pytest.approx(0.1)
    assert profile["correlation"]["matrix"][0][1] == pytest.approx(0.9988, abs=0.002)
    x_column = column(profile, "x")
    # Exact whatever the sample: counts, mean, min, max, histograms.
    assert x_column["count"] == rows
    assert x_column["mean"] == pytest.approx(x.mean())
    assert x_column["std"] == pytest.approx(x.std(ddof=1))
    assert x_column["min"] == x.min()
    assert x_column["max"] == x.max()
    assert x_column["histogram"]["counts"] == np.histogram(x, bins=30)[0].tolist()
    # From the sample: quantiles, and "all distinct" since no sampled value repeats.
    assert x_column["quantiles_are_approximate"] is True
    assert x_column["quantiles"]["p50"] == pytest.approx(np.median(x), abs=0.05)
    assert (x_column["distinct_count"], x_column["distinct_is_approximate"]) == (rows, True)
    # An integer column with one bin per value has exact quantiles, from its counts.
    code = column(profile, "code")
    assert code["quantiles_are_approximate"] is False
    expected = np.quantile(codes, [0.05, 0.25, 0.5, 0.75, 0.95])
    assert list(code["quantiles"].values()) == pytest.approx(expected.tolist())
    # Repeats in the sample: counted exactly over all rows.
    assert (
        column(profile, "code")["distinct_count"],
        column(profile, "code")["distinct_is_approximate"],
    ) == (
        5,
        False,
    )
    assert (column(profile, "id")["distinct_count"], column(profile, "id")["distinct_is_approximate"]) == (
        5000,
        False,
    )
    assert column(profile, "label")["distinct_count"] == 3
    assert profile["duplicates_are_approximate"] is True
    assert profile["duplicate_row_count"] == 0
    assert len(profile["approximations"]) == 3
    assert_plain_json(profile)

    # Too many values to count exactly: HyperLogLog, marked approximate.
    monkeypatch.setattr("datasets.profiling.EXACT_DISTINCT_MAX", 100)
    estimated = column(profile_parquet(path, schema, sample_rows=2000, exact_max_rows=100), "id")
    assert estimated["distinct_is_approximate"] is True
    assert estimated["distinct_count"] == pytest.approx(5000, rel=0.5)


def test_histograms_without_footer_statistics(tmp_path):
    # given: the same data with and without row-group statistics, which plan the bins before the scan
    rng = np.random.default_rng(11)
    columns = {"x": pa.array(rng.normal(size=3000)), "n": pa.array(rng.integers(-5, 500, size=3000))}
    with_statistics = write(tmp_path, columns, name="with.parquet", row_group_size=1000)
    without = write(tmp_path, columns, name="without.parquet", row_group_size=1000, write_statistics=False)
    schema = {"x": "numeric", "n": "numeric"}

    # when
    planned, scanned = profile_parquet(with_statistics, schema), profile_parquet(without, schema)

    # then
    for name in schema:
        assert column(planned, name)["histogram"] == column(scanned, name)["histogram"]
        counts, edges = np.histogram(columns[name].to_numpy(), bins=30)
        assert column(planned, name)["histogram"]["counts"] == counts.tolist()
        assert column(planned, name)["histogram"]["edges"] == pytest.approx(edges.tolist())


def test_the_same_profile_on_one_thread_and_on_several(tmp_path):
    rng = np.random.default_rng(3)
    path = write(
        tmp_path,
        {f"n{i}": pa.array(rng.normal(size=500)) for i in range(5)}
        | {"c": pa.array(rng.choice(["p", "q"], 500))},
    )
    schema = {f"n{i}": "numeric" for i in range(5)} | {"c": "categorical"}

    one = profile_parquet(path, schema, threads=1)
    four = profile_parquet(path, schema, threads=4)

    for key in ("timings_s", "elapsed_s", "settings"):
        one.pop(key), four.pop(key)
    assert rounded(one) == rounded(four)


def rounded(value):
    """Return `value` with floats to 10 significant digits: sums in another order differ in the last bits."""
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    return value


def test_progress_is_reported_in_order(tmp_path):
    path = write(tmp_path, {"a": pa.array([1.0, 2.0]), "b": pa.array(["x", "y"]), "c": pa.array([3.0, 1.0])})
    calls = []

    profile_parquet(
        path, {"a": "numeric", "b": "categorical", "c": "numeric"}, progress=lambda f, m: calls.append((f, m))
    )

    fractions = [fraction for fraction, _ in calls]
    assert fractions[0] == 0.0
    assert fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert all(isinstance(message, str) and message for _, message in calls)


def test_schema_problems(tmp_path):
    path = write(
        tmp_path,
        {"a": pa.array([1.0]), "when": pa.array([datetime(2024, 1, 1, tzinfo=UTC)]), "tag": pa.array(["x"])},
    )

    with pytest.raises(ValueError, match="'missing'"):
        profile_parquet(path, {"a": "numeric", "missing": "numeric"})
    with pytest.raises(ValueError, match="unknown column type"):
        profile_parquet(path, {"a": "fancy"})
    # Columns the schema does not name are profiled with a type inferred from the file.
    profile = profile_parquet(path, {})
    assert [item["type"] for item in profile["columns"]] == ["numeric", "datetime", "categorical"]


def test_nothing_is_left_behind(tmp_path, monkeypatch):
    # DuckDB spills into a private temporary folder, removed afterwards.
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    path = write(tmp_path, {"a": pa.array([1.0, 2.0])})

    profile_parquet(path, {"a": "numeric"})

    assert list((tmp_path / "tmp").iterdir()) == []
    assert math.isclose(column(profile_parquet(path, {"a": "numeric"}), "a")["mean"], 1.5)
