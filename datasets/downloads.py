"""Streamed downloads: a version as Parquet or CSV, and image thumbnails, with bounded memory."""

import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from asgiref.sync import sync_to_async

CHUNK_BYTES = 1024 * 1024
_DONE = object()


async def _async_chunks(iterator: Iterator[bytes]) -> AsyncIterator[bytes]:
    # Under ASGI Django would read a synchronous iterator to the end before sending anything;
    # pulling each chunk in a thread keeps a multi-GB download streaming.
    while True:
        chunk = await sync_to_async(next, thread_sensitive=False)(iterator, _DONE)
        if chunk is _DONE:
            return
        yield chunk


def _file_iterator(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from iter(lambda: handle.read(CHUNK_BYTES), b"")


def _csv_iterator(path: Path) -> Iterator[bytes]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    include_header = True
    for batch in parquet.iter_batches(batch_size=50_000):
        buffer = io.BytesIO()
        pacsv.write_csv(batch, buffer, write_options=pacsv.WriteOptions(include_header=include_header))
        include_header = False
        yield buffer.getvalue()
    if include_header:  # no rows: still send the header
        buffer = io.BytesIO()
        pacsv.write_csv(parquet.schema_arrow.empty_table(), buffer)
        yield buffer.getvalue()


def _for_server(request, iterator: Iterator[bytes]):
    from django.core.handlers.asgi import ASGIRequest

    return _async_chunks(iterator) if isinstance(request, ASGIRequest) else iterator


def file_chunks(request, path: Path):
    """Chunks of a file, as the server in front of `request` (ASGI or WSGI) streams best."""
    return _for_server(request, _file_iterator(path))


def csv_chunks(request, path: Path):
    """A Parquet file as CSV, batch by batch."""
    return _for_server(request, _csv_iterator(path))


def thumbnail(path: Path, size: int = 160) -> io.BytesIO:
    from PIL import Image

    cached = path.with_name(f".thumb-{size}-{path.name}.jpg")
    if not cached.exists():
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((size, size))
            partial = cached.with_suffix(".part")
            image.save(partial, "JPEG", quality=80)
            partial.replace(cached)
    return io.BytesIO(cached.read_bytes())
