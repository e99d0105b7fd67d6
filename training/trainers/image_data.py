"""Image decoding for the image trainer and for serving (torch + Pillow; imported only when used)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from training.trainers.base import TrainerError
from training.trainers.image import NORMALIZE_MEAN, NORMALIZE_STD


def _decode(image, size: int):
    image = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 255.0
    return (torch.from_numpy(array.copy()).permute(2, 0, 1) - NORMALIZE_MEAN) / NORMALIZE_STD


def image_tensor(source, size: int, *, files_dir: Path | None = None):
    """Return a normalized float tensor [3, size, size] from a path (relative to files_dir), bytes, a
    Pillow image or a uint8 array."""
    if isinstance(source, Image.Image):
        return _decode(source, size)
    if isinstance(source, np.ndarray):
        return _decode(Image.fromarray(source), size)
    if isinstance(source, bytes | bytearray):
        with Image.open(io.BytesIO(source)) as image:
            return _decode(image, size)
    if files_dir is None:
        raise ValueError("an image given as a path needs files_dir")
    path = resolve_image(Path(files_dir), str(source))
    with Image.open(path) as image:
        image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale when it can
        return _decode(image, size)


def resolve_image(files_dir: Path, relative: str) -> Path:
    root = files_dir.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):  # a crafted table must not read files outside the dataset
        raise TrainerError(f"image path {relative!r} points outside the dataset's files", code="invalid_data")
    return path


class ImageDataset(torch.utils.data.Dataset):
    """Decode one image per item; a torch map-style dataset (picklable for loader workers)."""

    def __init__(self, paths: list[Path], labels, image_size: int):
        self.paths = paths
        self.labels = labels
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        path = self.paths[index]
        try:
            with Image.open(path) as image:
                image.draft("RGB", (self.image_size, self.image_size))
                tensor = _decode(image, self.image_size)
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            raise TrainerError(f"image {path.name} cannot be read: {error}", code="invalid_data") from None
        return tensor, self.labels[index]


def flip_horizontal(features, generator):
    flip = (torch.rand(features.shape[0], generator=generator) < 0.5).to(features.device)
    return torch.where(flip.view(-1, 1, 1, 1), features.flip(-1), features)
