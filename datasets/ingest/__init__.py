"""Turn an uploaded file into one Parquet file with a typed schema. Pure Python: no Django here; the
datasets services and Celery tasks call it.

    result = ingest_file(path, original_name="sales.csv", work_dir=tmp, progress=report)

Formats (from the content's magic bytes, checked against the extension): CSV/TSV (encoding and
delimiter detected), Parquet, JSON Lines, Excel (.xlsx), images as a zip or a folder.

IngestError codes:
    empty_file            the file (or sheet) holds nothing
    format_mismatch       the content is not what the extension says (a zip named .csv, ...)
    unsupported_format    a format we do not read (.xls, .gz, a JSON array, ...)
    encoding_error        undecodable bytes (message names the byte offset and line), unknown encoding
    ragged_row            a row with the wrong number of fields (message names the line)
    csv_parse_error       other CSV damage: an unclosed quote, a row longer than the block size
    duplicate_columns     two columns share a name (message lists them)
    too_many_columns      more than IngestLimits.max_columns
    invalid_json          a JSON Lines line that is not a JSON object (message names the line)
    invalid_parquet       a Parquet file that does not open or decode
    invalid_excel         a workbook openpyxl cannot read
    sheet_not_found       the named sheet does not exist (message lists the sheets)
    invalid_zip           a damaged archive, a duplicate entry
    unsafe_zip_entry      an entry with "..", an absolute path, a drive letter, a symlink, control chars
    unsafe_path           a symlink in an uploaded folder
    encrypted_zip         a password-protected entry
    zip_bomb              an entry or the archive expands more than the ratio or total-size caps
    zip_too_many_entries  more entries than IngestLimits.max_zip_entries
    no_images             an image archive without a single readable image
    image_too_large       an image with more pixels than IngestLimits.max_image_pixels
    invalid_option        a bad override (a delimiter that is not one character)
    invalid_file          anything else pyarrow refused
"""

from datasets.ingest.core import IngestError, IngestLimits, IngestResult
from datasets.ingest.dispatch import dataset_kind, ingest_file
from datasets.ingest.schema import infer_schema

__all__ = ["IngestError", "IngestLimits", "IngestResult", "dataset_kind", "infer_schema", "ingest_file"]
