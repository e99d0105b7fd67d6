"""datasets.ingest: uploads to Parquet. Pure functions, no database: run with `-p no:django` if you like."""

import datetime as dt
import io
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from datasets.ingest import IngestError, IngestLimits, dataset_kind, infer_schema, ingest_file
from datasets.ingest.zipsafety import ExtractionBudget

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------------ helpers


def ingest(tmp_path: Path, name: str, data: bytes, **kwargs):
    # The stored file's own name says nothing: only original_name is what the user called it.
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    return ingest_file(source, original_name=name, work_dir=tmp_path / "work", **kwargs)


def ingest_error(tmp_path: Path, name: str, data: bytes, **kwargs) -> IngestError:
    with pytest.raises(IngestError) as caught:
        ingest(tmp_path, name, data, **kwargs)
    work = tmp_path / "work"
    # Nothing half-written: no Parquet, no partial file, no extracted images.
    assert not work.exists() or sorted(p.name for p in work.iterdir()) == []
    return caught.value


def naive(text: str) -> dt.datetime:
    """A datetime without a time zone, as Excel cells and zone-less Parquet timestamps hold them."""
    return dt.datetime.fromisoformat(text)


def rows(result) -> list[dict]:
    return pq.read_table(result.parquet_path).to_pylist()


def types(result) -> dict[str, str]:
    return {column["name"]: column["type"] for column in result.schema}


def png(size=(4, 3), color="red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def make_zip(entries: dict[str, bytes], *, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return buffer.getvalue()


def workbook_bytes(fill) -> bytes:
    workbook = openpyxl.Workbook()
    fill(workbook)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------ CSV: good


def test_csv_with_semicolons_latin1_and_decimal_commas(tmp_path):
    data = "nom;âge;taux\nJérôme;32;1,5\nFrançoise;45;2,25\nGaëlle;28;3\n".encode("latin-1")

    result = ingest(tmp_path, "clients.csv", data)

    assert result.format == "csv"
    assert result.kind == "tabular"
    assert result.row_count == 3
    assert result.details["delimiter"] == ";"
    assert result.details["encoding"] in ("cp1252", "latin-1")
    assert result.details["decimal_point"] == ","
    assert rows(result)[0] == {"nom": "Jérôme", "âge": 32, "taux": 1.5}
    assert types(result) == {"nom": "categorical", "âge": "numeric", "taux": "numeric"}
    assert result.parquet_path == tmp_path / "work" / "data.parquet"
    assert result.files_dir is None


def test_tsv(tmp_path):
    result = ingest(tmp_path, "scores.tsv", b"name\tscore\nann\t1.5\nbob\t2\n")

    assert result.format == "tsv"
    assert result.details["delimiter"] == "\t"
    assert rows(result) == [{"name": "ann", "score": 1.5}, {"name": "bob", "score": 2.0}]


def test_tab_delimited_content_named_csv_is_read_as_tsv(tmp_path):
    result = ingest(tmp_path, "scores.csv", b"a\tb\n1\t2\n")

    assert result.format == "tsv"
    assert rows(result) == [{"a": 1, "b": 2}]


def test_utf8_bom_is_not_part_of_the_first_column_name(tmp_path):
    result = ingest(tmp_path, "bom.csv", "\ufeffcity,population\nZürich,421878\n".encode())

    assert result.details["encoding"] == "utf-8-sig"
    assert rows(result) == [{"city": "Zürich", "population": 421878}]


def test_utf16_csv_is_transcoded(tmp_path):
    result = ingest(tmp_path, "wide.csv", "name,city\nÅsa,Malmö\n".encode("utf-16"))

    assert result.details["encoding"] == "utf-16"
    assert rows(result) == [{"name": "Åsa", "city": "Malmö"}]


def test_quoted_values_with_delimiters_and_newlines(tmp_path):
    data = b'id,comment\n1,"hello, world"\n2,"two\nlines"\n3,"say ""hi"""\n'

    result = ingest(tmp_path, "notes.csv", data)

    assert [row["comment"] for row in rows(result)] == ["hello, world", "two\nlines", 'say "hi"']


def test_header_only_csv_gives_zero_rows_of_string_columns(tmp_path):
    result = ingest(tmp_path, "empty-table.csv", b"a,b,c\n")

    assert result.row_count == 0
    assert [column["name"] for column in result.schema] == ["a", "b", "c"]
    assert {column["arrow_type"] for column in result.schema} == {"string"}
    assert result.details["header_only"] is True


def test_lines_of_only_spaces_are_skipped(tmp_path):
    result = ingest(tmp_path, "trailing.csv", b"a,b\n1,2\n   \n3,4\n \t \n")

    assert rows(result) == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]


def test_utf16_without_bom_and_jsonl_with_bom(tmp_path):
    result = ingest(tmp_path, "le.csv", "a,b\n1,ü\n".encode("utf-16-le"))
    assert result.details["encoding"] == "utf-16-le"
    assert rows(result) == [{"a": 1, "b": "ü"}]

    other = tmp_path / "other"
    other.mkdir()
    result = ingest(other, "bom.jsonl", '\ufeff{"a": "é"}\n'.encode())
    assert rows(result) == [{"a": "é"}]


def test_blank_column_names_are_auto_named(tmp_path):
    result = ingest(tmp_path, "blank.csv", b"a,,c, \n1,2,3,4\n")

    assert [column["name"] for column in result.schema] == ["a", "column_2", "c", "column_4"]
    assert result.details["auto_named_columns"] == ["column_2", "column_4"]


def test_a_late_value_that_does_not_fit_widens_the_column(tmp_path):
    # Types are inferred from the first block; small blocks put the surprises far past it.
    body = "".join(f"{i},{i},{i}\n" for i in range(20_000))
    data = ("n,f,s\n" + body + "20000,2.5,oops\n").encode()

    result = ingest(tmp_path, "late.csv", data, limits=IngestLimits(text_block_bytes=16 * 1024))

    assert result.row_count == 20_001
    arrow_types = {column["name"]: column["arrow_type"] for column in result.schema}
    assert arrow_types == {"n": "int64", "f": "double", "s": "string"}
    assert result.details["widened_columns"] == {"f": "double", "s": "string"}
    assert rows(result)[-1] == {"n": 20000, "f": 2.5, "s": "oops"}


def test_column_empty_in_the_first_block_takes_later_values(tmp_path):
    data = ("a,b\n" + "1,\n" * 5000 + "2,late text\n").encode()

    result = ingest(tmp_path, "sparse.csv", data, limits=IngestLimits(text_block_bytes=8 * 1024))

    assert rows(result)[-1] == {"a": 2, "b": "late text"}


def test_progress_is_monotonic_and_ends_at_one(tmp_path):
    data = ("a,b\n" + "".join(f"{i},x{i}\n" for i in range(200_000))).encode()
    seen = []

    ingest(tmp_path, "big.csv", data, progress=seen.append, limits=IngestLimits(text_block_bytes=64 * 1024))

    assert len(seen) > 5
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
    assert all(0.0 <= value <= 1.0 for value in seen)


def test_delimiter_and_encoding_can_be_given(tmp_path):
    data = "a|b\né|2\n".encode("cp1252")

    result = ingest(tmp_path, "pipes.txt", data, delimiter="|", encoding="cp1252")

    assert rows(result) == [{"a": "é", "b": 2}]


def test_unknown_extension_is_read_by_content(tmp_path):
    result = ingest(tmp_path, "export", b"x,y\n1,2\n")

    assert result.format == "csv"
    assert result.row_count == 1


# ------------------------------------------------------------------------------------------ CSV: bad


def test_ragged_row_names_the_line(tmp_path):
    data = b"a,b,c\n1,2,3\n" + b"4,5,6\n" * 55 + b"7,8,9,10\n" + b"1,2,3\n"

    error = ingest_error(tmp_path, "ragged.csv", data)

    assert error.code == "ragged_row"
    assert "line 58 has 4 fields, expected 3" in error.message


def test_ragged_row_with_too_few_fields(tmp_path):
    error = ingest_error(tmp_path, "short.csv", b"a,b,c\n1,2,3\n4,5\n")

    assert error.code == "ragged_row"
    assert "line 3 has 2 fields, expected 3" in error.message


def test_ragged_row_line_counts_physical_lines_after_quoted_newlines(tmp_path):
    data = b'a,b\n1,"x\ny\nz"\n2,3,4\n'

    error = ingest_error(tmp_path, "multi.csv", data)

    assert "line 5 has 3 fields, expected 2" in error.message


def test_ragged_row_far_into_a_big_file(tmp_path):
    data = ("a,b\n" + "1,2\n" * 100_000 + "3,4,5\n").encode()

    error = ingest_error(tmp_path, "far.csv", data, limits=IngestLimits(text_block_bytes=64 * 1024))

    assert "line 100,002 has 3 fields, expected 2" in error.message


def test_undecodable_bytes_name_the_offset_and_line(tmp_path):
    data = "name,city\nJosé,Zürich\n".encode() + b"Ann,Bad\xffCity\n"
    offset = data.index(b"\xff")

    error = ingest_error(tmp_path, "broken.csv", data)

    assert error.code == "encoding_error"
    assert "undecodable byte 0xff" in error.message
    assert f"byte offset {offset}" in error.message
    assert "(line 3)" in error.message


def test_undecodable_bytes_past_the_detection_sample(tmp_path):
    # The first megabyte is plain ASCII (read as UTF-8); the broken byte comes later.
    head = b"a,b\n" + b"1,2\n" * 300_000
    data = head + b"3,\xc3\x28\n"

    error = ingest_error(tmp_path, "late-broken.csv", data)

    assert error.code == "encoding_error"
    assert f"byte offset {len(head) + 2:,}" in error.message
    assert "line 300,002" in error.message


def test_declared_encoding_that_does_not_fit(tmp_path):
    error = ingest_error(tmp_path, "x.csv", "a\né\n".encode("latin-1"), encoding="utf-8")

    assert error.code == "encoding_error"
    assert "byte offset 2" in error.message


@pytest.mark.parametrize("data", [b"", b"\n\n   \n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"])
def test_empty_file(tmp_path, data):
    error = ingest_error(tmp_path, "empty.csv", data)

    assert error.code == "empty_file"
    assert "the file is empty" in error.message


def test_duplicate_column_names_are_listed(tmp_path):
    error = ingest_error(tmp_path, "dupes.csv", b"id,name,id,score,name \n1,a,2,3,b\n")

    assert error.code == "duplicate_columns"
    assert "duplicate column names: 'id', 'name'" in error.message


def test_too_many_columns(tmp_path):
    error = ingest_error(tmp_path, "wide.csv", b"a,b,c,d\n1,2,3,4\n", limits=IngestLimits(max_columns=3))

    assert error.code == "too_many_columns"
    assert "4 columns, more than the limit of 3" in error.message


def test_a_quote_never_closed_in_a_big_file(tmp_path):
    data = ("a,b\n" + "1,2\n" * 10 + '3,"never closed\n' + "4,5\n" * 100_000).encode()

    error = ingest_error(tmp_path, "quote.csv", data, limits=IngestLimits(text_block_bytes=16 * 1024))

    assert error.code == "csv_parse_error"
    assert "line 12" in error.message
    assert "quote" in error.message


# ------------------------------------------------------------------------------- not what it claims


def test_zip_named_csv(tmp_path):
    error = ingest_error(tmp_path, "data.csv", make_zip({"data.csv": b"a,b\n1,2\n"}))

    assert error.code == "format_mismatch"
    assert "data.csv looks like a zip archive, not CSV" in error.message


def test_csv_named_parquet(tmp_path):
    error = ingest_error(tmp_path, "data.parquet", b"a,b\n1,2\n")

    assert error.code == "format_mismatch"
    assert "data.parquet looks like a text file (CSV?), not Parquet" in error.message


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("photo.csv", png(), "photo.csv looks like a PNG image, not CSV"),
        ("book.csv", None, "book.csv looks like an Excel workbook (.xlsx), not CSV"),
        ("table.xlsx", b"a,b\n1,2\n", "table.xlsx looks like a text file (CSV?), not an Excel workbook"),
        ("images.zip", b"a,b\n1,2\n", "images.zip looks like a text file (CSV?), not a zip of images"),
        ("rows.csv", b'{"a": 1}\n{"a": 2}\n', "rows.csv looks like JSON Lines, not CSV"),
        ("rows.jsonl", b"a,b\n1,2\n", "not JSON Lines (line 1 is not a JSON object)"),
        ("data.tsv", b"PAR1\x00\x00garbage", "data.tsv looks like a Parquet file, not TSV"),
        ("report.csv", b"%PDF-1.7\n...", "report.csv looks like a PDF document, not CSV"),
    ],
)
def test_content_that_is_not_what_the_extension_says(tmp_path, name, data, expected):
    if data is None:
        data = workbook_bytes(lambda workbook: workbook.active.append(["a"]))

    error = ingest_error(tmp_path, name, data)

    assert error.code == "format_mismatch"
    assert expected in error.message


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "legacy Excel workbooks (.xls) are not supported"),
        ("rows.csv.gz", b"\x1f\x8b\x08\x00", "decompress it first"),
        ("array.json", b'[{"a": 1}]', "is a JSON array; upload JSON Lines instead"),
    ],
)
def test_unsupported_formats(tmp_path, name, data, expected):
    error = ingest_error(tmp_path, name, data)

    assert error.code == "unsupported_format"
    assert expected in error.message


def test_damaged_parquet(tmp_path):
    error = ingest_error(tmp_path, "data.parquet", b"PAR1" + b"\x00" * 100 + b"PAR1")

    assert error.code == "invalid_parquet"
    assert "not a valid Parquet file" in error.message


# ------------------------------------------------------------------------------------------- JSON Lines


def test_jsonl_text_dataset(tmp_path):
    lines = [
        {
            "id": i,
            "review": f"this product number {i} was honestly quite good",
            "label": "pos" if i % 2 else "neg",
        }
        for i in range(50)
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode() + b"\n"

    result = ingest(tmp_path, "reviews.jsonl", data)

    assert result.format == "jsonl"
    assert result.kind == "text"
    assert result.row_count == 50
    assert types(result) == {"id": "numeric", "review": "text", "label": "categorical"}
    assert result.details["schema_drift"] is False


def test_ndjson_with_blank_lines(tmp_path):
    result = ingest(tmp_path, "events.ndjson", b'{"a": 1}\n\n{"a": 2}\n\n')

    assert rows(result) == [{"a": 1}, {"a": 2}]


def test_jsonl_schema_drift_falls_back_and_keeps_every_key(tmp_path):
    data = b'{"a": 1, "b": "x"}\n' * 5000 + b'{"a": 2.5, "c": {"deep": [1, 2]}}\n{"a": "text"}\n'

    result = ingest(tmp_path, "drift.jsonl", data, limits=IngestLimits(text_block_bytes=16 * 1024))

    assert result.details["schema_drift"] is True
    assert result.row_count == 5002
    table = rows(result)
    assert table[-2] == {"a": "2.5", "b": None, "c": '{"deep": [1, 2]}'}
    assert table[-1] == {"a": "text", "b": None, "c": None}


def test_jsonl_bad_line_is_named(tmp_path):
    data = b'{"a": 1}\n{"a": 2}\n{"a": 3,,}\n{"a": 4}\n'

    error = ingest_error(tmp_path, "bad.jsonl", data)

    assert error.code == "invalid_json"
    assert "line 3 is not valid JSON" in error.message


def test_jsonl_line_that_is_not_an_object(tmp_path):
    error = ingest_error(tmp_path, "bad.jsonl", b'{"a": 1}\n[1, 2]\n')

    assert error.code == "invalid_json"
    assert "line 2 is an array, not a JSON object" in error.message


def test_empty_jsonl(tmp_path):
    error = ingest_error(tmp_path, "none.jsonl", b"\n \n")

    assert error.code == "empty_file"


# ---------------------------------------------------------------------------------------------- Parquet


def test_parquet_is_validated_and_rewritten(tmp_path):
    table = pa.table(
        {
            "x": pa.array([1, 2, 3], pa.int32()),
            "when": pa.array([naive(f"2024-01-{day:02d}T00:00:00") for day in (1, 2, 3)], pa.timestamp("ms")),
            "ok": [True, False, None],
            "name": ["a", "b", "c"],
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="snappy")

    result = ingest(tmp_path, "data.parquet", buffer.getvalue())

    assert result.format == "parquet"
    assert result.row_count == 3
    assert pq.read_table(result.parquet_path).equals(table)
    assert types(result) == {"x": "numeric", "when": "datetime", "ok": "boolean", "name": "categorical"}
    assert pq.ParquetFile(result.parquet_path).metadata.row_group(0).column(0).compression == "ZSTD"


# ------------------------------------------------------------------------------------------------ Excel


def _sales(workbook):
    sheet = workbook.active
    sheet.title = "Sales"
    sheet.append([None])  # a blank row above the header
    sheet.append(["product", "qty", "price", "sold_at", "paid", None, "note"])
    sheet.append(["apple", 3, 1.5, naive("2024-01-02T03:04:05"), True, 7, "first"])
    sheet.append(["pear", 4, 2, naive("2024-01-03T00:00:00"), False, None, None])
    sheet.append([None] * 7)
    sheet.append(["fig", None, 2.5, naive("2024-01-04T12:00:00"), True, None, 42])
    other = workbook.create_sheet("Stock")
    other.append(["item", "count"])
    other.append(["bolt", 10])


def test_xlsx_first_sheet(tmp_path):
    result = ingest(tmp_path, "sales.xlsx", workbook_bytes(_sales))

    assert result.format == "excel"
    assert result.row_count == 3
    assert result.details["sheet_name"] == "Sales"
    assert result.details["sheet_names"] == ["Sales", "Stock"]
    assert result.details["header_row"] == 2
    assert result.details["auto_named_columns"] == ["column_F"]
    arrow_types = {column["name"]: column["arrow_type"] for column in result.schema}
    assert arrow_types == {
        "product": "string",
        "qty": "int64",
        "price": "double",
        "sold_at": "timestamp[us]",
        "paid": "bool",
        "column_F": "int64",
        "note": "string",
    }
    assert rows(result)[0] == {
        "product": "apple",
        "qty": 3,
        "price": 1.5,
        "sold_at": naive("2024-01-02T03:04:05"),
        "paid": True,
        "column_F": 7,
        "note": "first",
    }
    assert rows(result)[2]["note"] == "42"


def test_xlsx_named_sheet(tmp_path):
    result = ingest(tmp_path, "sales.xlsx", workbook_bytes(_sales), sheet_name="Stock")

    assert rows(result) == [{"item": "bolt", "count": 10}]


def test_xlsx_missing_sheet_lists_the_sheets(tmp_path):
    error = ingest_error(tmp_path, "sales.xlsx", workbook_bytes(_sales), sheet_name="Nope")

    assert error.code == "sheet_not_found"
    assert "no sheet named 'Nope'; it has 'Sales', 'Stock'" in error.message


def test_xlsx_duplicate_headers(tmp_path):
    def fill(workbook):
        workbook.active.append(["a", "b", "a"])
        workbook.active.append([1, 2, 3])

    error = ingest_error(tmp_path, "dupes.xlsx", workbook_bytes(fill))

    assert error.code == "duplicate_columns"
    assert "'a'" in error.message


def test_empty_xlsx_sheet(tmp_path):
    error = ingest_error(tmp_path, "empty.xlsx", workbook_bytes(lambda workbook: None))

    assert error.code == "empty_file"
    assert "the sheet is empty" in error.message


def test_damaged_xlsx(tmp_path):
    data = make_zip({"[Content_Types].xml": b"<nope", "xl/workbook.xml": b"<nope"})

    error = ingest_error(tmp_path, "broken.xlsx", data)

    assert error.code == "invalid_excel"


# ----------------------------------------------------------------------------------------------- images


def test_image_zip_with_two_classes(tmp_path):
    entries = {
        "pets/cats/1.png": png((4, 3)),
        "pets/cats/2.png": png((5, 3)),
        "pets/cats/3.png": png((6, 3)),
        "pets/dogs/1.png": png((7, 2), "blue"),
        "pets/dogs/2.jpg": b"",  # filled below with a real JPEG
        "pets/.DS_Store": b"junk",
        "__MACOSX/pets/cats/._1.png": b"junk",
        "pets/README.txt": b"hello",
    }
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8), "green").save(jpeg, "JPEG")
    entries["pets/dogs/2.jpg"] = jpeg.getvalue()

    result = ingest(tmp_path, "pets.zip", make_zip(entries))

    assert result.format == "images"
    assert result.kind == "image"
    assert result.row_count == 5
    assert result.details["layout"] == "class_folders"
    assert result.details["class_counts"] == {"cats": 3, "dogs": 2}
    assert result.details["skipped_system_files"] == 2
    assert result.details["skipped_non_image_files"] == 1
    assert result.details["non_image_examples"] == ["pets/README.txt"]
    assert types(result) == {
        "image": "image",
        "label": "categorical",
        "width": "numeric",
        "height": "numeric",
    }
    table = rows(result)
    assert table[0] == {"image": "cats/1.png", "label": "cats", "width": 4, "height": 3}
    assert table[4] == {"image": "dogs/2.jpg", "label": "dogs", "width": 8, "height": 8}
    assert result.files_dir == tmp_path / "work" / "files"
    for row in table:
        assert (result.files_dir / row["image"]).is_file()
    assert not (result.files_dir / ".DS_Store").exists()
    assert not (result.files_dir / "README.txt").exists()


def test_flat_image_zip_has_no_label(tmp_path):
    result = ingest(tmp_path, "flat.zip", make_zip({"a.png": png(), "b.png": png()}))

    assert result.details["layout"] == "flat"
    assert [column["name"] for column in result.schema] == ["image", "width", "height"]
    assert "class_counts" not in result.details


def test_split_and_class_folders(tmp_path):
    entries = {"train/cat/1.png": png(), "train/dog/2.png": png(), "test/cat/3.png": png()}

    result = ingest(tmp_path, "split.zip", make_zip(entries))

    assert result.details["layout"] == "split_class_folders"
    assert result.details["split_counts"] == {"test": 1, "train": 2}
    assert result.details["class_counts"] == {"cat": 2, "dog": 1}
    assert rows(result)[0] == {
        "image": "test/cat/3.png",
        "label": "cat",
        "split": "test",
        "width": 4,
        "height": 3,
    }


def test_corrupt_images_are_skipped_and_counted(tmp_path):
    entries = {"cats/1.png": png(), "cats/2.png": b"not a png", "dogs/3.png": png()}

    result = ingest(tmp_path, "pets.zip", make_zip(entries))

    assert result.row_count == 2
    assert result.details["skipped_corrupt_images"] == 1
    assert result.details["corrupt_examples"][0].startswith("cats/2.png: cannot identify image file")
    assert str(tmp_path) not in result.details["corrupt_examples"][0]
    assert not (result.files_dir / "cats" / "2.png").exists()


def test_zip_without_images(tmp_path):
    error = ingest_error(tmp_path, "data.zip", make_zip({"table.csv": b"a\n1\n", ".DS_Store": b""}))

    assert error.code == "no_images"
    assert "found 1 other files, e.g. table.csv" in error.message


def test_zip_of_only_corrupt_images(tmp_path):
    error = ingest_error(tmp_path, "bad.zip", make_zip({"a.png": b"nope", "b.png": b"nope"}))

    assert error.code == "no_images"
    assert "none of the 2 images could be read" in error.message


def test_image_with_too_many_pixels(tmp_path):
    data = make_zip({"big/1.png": png((100, 100)), "small/2.png": png()})

    error = ingest_error(tmp_path, "big.zip", data, limits=IngestLimits(max_image_pixels=5_000))

    assert error.code == "image_too_large"
    assert "1.png is 100x100 pixels, more than the limit of 5,000 pixels" in error.message


def test_image_folder(tmp_path):
    folder = tmp_path / "upload"
    (folder / "cats").mkdir(parents=True)
    (folder / "dogs").mkdir()
    (folder / "cats" / "1.png").write_bytes(png())
    (folder / "dogs" / "2.png").write_bytes(png())
    (folder / "dogs" / "Thumbs.db").write_bytes(b"junk")

    result = ingest_file(folder, original_name="upload", work_dir=tmp_path / "work")

    assert result.details["source"] == "folder"
    assert result.details["class_counts"] == {"cats": 1, "dogs": 1}
    assert result.details["skipped_system_files"] == 1
    assert (result.files_dir / "dogs" / "2.png").read_bytes() == png()


def test_image_folder_with_a_symlink_is_refused(tmp_path):
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "1.png").write_bytes(png())
    (folder / "2.png").symlink_to("/etc/passwd")

    with pytest.raises(IngestError) as caught:
        ingest_file(folder, original_name="upload", work_dir=tmp_path / "work")

    assert caught.value.code == "unsafe_path"
    assert "'2.png' is a symbolic link" in caught.value.message


# ------------------------------------------------------------------------------------------- zip safety


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("../evil.png", "points outside the archive"),
        ("cats/../../evil.png", "points outside the archive"),
        ("..\\..\\evil.png", "points outside the archive"),
        ("/etc/evil.png", "has an absolute path"),
        ("C:\\Windows\\evil.png", "has an absolute path"),
        ("c:evil.png", "has an absolute path"),
        ("cats/evil\n.png", "control characters"),
    ],
)
def test_zip_entries_that_could_escape_are_refused(tmp_path, entry, expected):
    data = make_zip({"cats/ok.png": png(), entry: png()})

    error = ingest_error(tmp_path, "pets.zip", data)

    assert error.code == "unsafe_zip_entry"
    assert expected in error.message
    assert not (tmp_path / "evil.png").exists()
    assert not (tmp_path.parent / "evil.png").exists()


def test_zip_symlink_entry_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cats/ok.png", png())
        link = zipfile.ZipInfo("cats/link.png")
        link.create_system = 3
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")

    error = ingest_error(tmp_path, "pets.zip", buffer.getvalue())

    assert error.code == "unsafe_zip_entry"
    assert "'cats/link.png' is a symbolic link" in error.message


def test_encrypted_zip_entry_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("a.png")
        archive.writestr(info, png())
    data = bytearray(buffer.getvalue())
    # Set the "encrypted" flag bit in the local header and the central directory.
    data[6] |= 1
    central = data.rindex(b"PK\x01\x02")
    data[central + 8] |= 1

    error = ingest_error(tmp_path, "a.zip", bytes(data))

    assert error.code == "encrypted_zip"


def test_zip_bomb_by_compression_ratio(tmp_path):
    data = make_zip({"bomb/1.png": b"\0" * (20 * 1024 * 1024), "ok/2.png": png()})
    assert len(data) < 100_000

    error = ingest_error(tmp_path, "bomb.zip", data)

    assert error.code == "zip_bomb"
    assert "zip entry 'bomb/1.png' expands 1,0" in error.message
    assert "more than the limit of 100x" in error.message


def test_zip_bomb_by_overall_ratio_of_many_small_entries(tmp_path):
    entries = {f"a/{index}.png": b"\0" * 900_000 for index in range(4)}

    error = ingest_error(tmp_path, "bomb.zip", make_zip(entries))

    assert error.code == "zip_bomb"
    assert "the archive expands" in error.message


def test_zip_bomb_by_total_size(tmp_path):
    entries = {f"a/{index}.png": bytes(range(256)) * 4096 for index in range(3)}  # 1 MB each, ~250x

    error = ingest_error(
        tmp_path,
        "big.zip",
        make_zip(entries),
        limits=IngestLimits(max_zip_total_bytes=2 * 1024 * 1024, max_zip_ratio=1_000_000),
    )

    assert error.code == "zip_bomb"
    assert "the archive expands to more than 2.0 MB" in error.message


def test_zip_caps_are_enforced_on_bytes_actually_written(tmp_path):
    # The pre-check passed (default limits); extraction under tighter limits must stop by counting.
    archive_path = tmp_path / "a.zip"
    archive_path.write_bytes(make_zip({"a.png": bytes(range(256)) * 8192}, compression=zipfile.ZIP_STORED))
    target = tmp_path / "out" / "a.png"
    budget = ExtractionBudget(IngestLimits(max_zip_total_bytes=1024 * 1024))

    with zipfile.ZipFile(archive_path) as archive, pytest.raises(IngestError) as caught:
        budget.extract(archive, archive.getinfo("a.png"), target)

    assert caught.value.code == "zip_bomb"
    assert not target.exists()


def test_zip_entry_lying_about_its_size_is_refused(tmp_path):
    data = bytearray(make_zip({"a.png": png() + b"\0" * 100_000}))
    # Shrink the declared uncompressed size in the local header and the central directory.
    real = len(png()) + 100_000
    small = (len(png())).to_bytes(4, "little")
    data[22:26] = small
    central = data.rindex(b"PK\x01\x02")
    assert int.from_bytes(data[central + 24 : central + 28], "little") == real
    data[central + 24 : central + 28] = small

    error = ingest_error(tmp_path, "liar.zip", bytes(data))

    assert error.code in ("invalid_zip", "zip_bomb")
    assert "a.png" in error.message


def test_too_many_zip_entries(tmp_path):
    entries = {f"{index}.png": png() for index in range(5)}

    error = ingest_error(tmp_path, "many.zip", make_zip(entries), limits=IngestLimits(max_zip_entries=3))

    assert error.code == "zip_too_many_entries"
    assert "5 entries, more than the limit of 3" in error.message


def test_xlsx_is_checked_as_a_zip_too(tmp_path):
    error = ingest_error(
        tmp_path, "sales.xlsx", workbook_bytes(_sales), limits=IngestLimits(max_zip_total_bytes=1000)
    )

    assert error.code == "zip_bomb"


# ---------------------------------------------------------------------------------------------- schema


def _schema_of(tmp_path, table: pa.Table) -> dict[str, str]:
    path = tmp_path / "schema.parquet"
    pq.write_table(table, path)
    return {column["name"]: column["type"] for column in infer_schema(path)}


def test_infer_schema_types(tmp_path):
    count = 40
    table = pa.table(
        {
            "int": list(range(count)),
            "float": [i / 3 for i in range(count)],
            "bool": [i % 2 == 0 for i in range(count)],
            "timestamp": pa.array([naive("2024-01-01T00:00:00")] * count, pa.timestamp("us")),
            "date": pa.array([dt.date(2024, 1, 1)] * count, pa.date32()),
            "iso_strings": [f"2024-01-{i % 28 + 1:02d}T10:00:00" for i in range(count)],
            "iso_dates_mostly": [f"2024-02-{i % 28 + 1:02d}" for i in range(count - 1)] + ["n/a"],
            "yes_no": ["yes", "no", "Yes", None] * (count // 4),
            "true_false": ["true", "false"] * (count // 2),
            "paths": [f"img/{i}.JPG" for i in range(count)],
            "colour": ["red", "green", "blue", "red"] * (count // 4),
            "sentences": [f"this is a fairly long sentence number {i}" for i in range(count)],
            "ids": [f"A{i:04d}" for i in range(count)],
            "hashes": [f"{i:032x}" for i in range(count)],
            "short_notes": [f"ok {i}" for i in range(count)],
            "nothing": pa.nulls(count, pa.string()),
            "dictionary": pa.array(["x", "y"] * (count // 2)).dictionary_encode(),
            "decimal": pa.array([1] * count, pa.decimal128(10, 2)),
            "nested": pa.array([{"a": 1}] * count),
        }
    )

    inferred = _schema_of(tmp_path, table)

    assert inferred == {
        "int": "numeric",
        "float": "numeric",
        "bool": "boolean",
        "timestamp": "datetime",
        "date": "datetime",
        "iso_strings": "datetime",
        "iso_dates_mostly": "datetime",  # 39 of 40 = 97.5% >= 95%
        "yes_no": "boolean",
        "true_false": "boolean",
        "paths": "image",
        "colour": "categorical",
        "sentences": "text",
        "ids": "categorical",
        "hashes": "categorical",
        "short_notes": "categorical",
        "nothing": "text",
        "dictionary": "categorical",
        "decimal": "numeric",
        "nested": "text",
    }


def test_infer_schema_reports_arrow_types_and_samples_only_the_first_rows(tmp_path):
    table = pa.table({"s": ["2024-01-01"] * 10 + ["not a date at all, but long text"] * 100})
    path = tmp_path / "s.parquet"
    pq.write_table(table, path)

    assert infer_schema(path, sample_rows=10) == [{"name": "s", "type": "datetime", "arrow_type": "string"}]
    assert infer_schema(path)[0]["type"] != "datetime"


def test_dataset_kind():
    text_columns = [{"type": "numeric"}, {"type": "text"}, {"type": "categorical"}]
    table_columns = [{"type": "numeric"}] * 3 + [{"type": "text"}]

    assert dataset_kind("jsonl", text_columns, 10) == "text"
    assert dataset_kind("csv", table_columns, 10) == "tabular"
    assert dataset_kind("images", table_columns, 10) == "image"
    assert dataset_kind("csv", text_columns, 0) == "tabular"


def test_work_dir_that_already_holds_a_dataset_is_refused(tmp_path):
    ingest(tmp_path, "a.csv", b"a\n1\n")

    with pytest.raises(ValueError, match="already holds"):
        ingest(tmp_path, "a.csv", b"a\n1\n")


# ---------------------------------------------------------------------------------------------- memory


def test_large_csv_converts_with_bounded_memory(tmp_path):
    """Peak RSS of a separate process converting ~100 MB of CSV stays far below the file's size x 6."""
    source = tmp_path / "big.csv"
    line_count = 0
    with source.open("w") as out:
        out.write("id,amount,category,when,comment,flag\n")
        while out.tell() < 100 * 1024 * 1024:
            block = "".join(
                f"{i},{i * 0.37:.2f},c{i % 7},2024-01-{i % 28 + 1:02d} 12:00:00,"
                f'"row {i}, says hello {i * 7}",{"true" if i % 2 else "false"}\n'
                for i in range(line_count, line_count + 20_000)
            )
            out.write(block)
            line_count += 20_000
    script = textwrap.dedent(
        f"""
        import json, re
        from pathlib import Path
        from datasets.ingest import ingest_file
        source, work_dir = Path({str(source)!r}), Path({str(tmp_path / "w")!r})
        result = ingest_file(source, original_name="big.csv", work_dir=work_dir)
        # VmHWM belongs to this process's own memory map; getrusage's ru_maxrss survives exec and
        # would report the (large) pytest parent's peak instead.
        status = Path("/proc/self/status").read_text()
        peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) * 1024
        print(json.dumps({{"rows": result.row_count, "peak_bytes": peak}}))
        """
    )

    finished = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )

    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout.strip().splitlines()[-1])
    assert report["rows"] == line_count
    assert 20 * 1024 * 1024 < report["peak_bytes"] < 600 * 1024 * 1024, (
        f"peak RSS {report['peak_bytes'] / 2**20:.0f} MB"
    )
