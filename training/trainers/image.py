"""image_classification: a small CNN on an image dataset version (an `image` column of paths under the
version's files directory, a `label` column, maybe a `split` column).

Images are decoded with Pillow by a torch Dataset (in `num_workers` loader processes), converted to RGB,
resized to image_size x image_size (bilinear, aspect ratio not kept), scaled to [0, 1] and normalized
with mean 0.5 / std 0.5 per channel. Horizontal flips (augment_flip) happen on the batch in the training
process, from a per-epoch generator, so a resumed run flips the same images.
"""

from __future__ import annotations

from pathlib import Path

from training.trainers.base import Hyperparameter, Trainer, TrainerContext, TrainerError, TrainingData
from training.trainers.hyperparameters import torch_loop
from training.trainers.preprocessing import encode_target, read_table, split_rows

NORMALIZE_MEAN = 0.5
NORMALIZE_STD = 0.5


def image_column(schema: dict[str, str]) -> str | None:
    images = [name for name, kind in schema.items() if kind == "image"]
    if "image" in images:
        return "image"
    return images[0] if images else None


class ImageClassificationTrainer(Trainer):
    name = "image_classification"
    title = "Image classification (small CNN)"
    task = "classification"
    data_kind = "image"
    target_types = ("categorical", "boolean", "numeric")
    default_target = "label"
    hyperparameters = [
        Hyperparameter(
            "channels",
            "int_list",
            (16, 32, 64),
            min=1,
            max=512,
            max_length=6,
            help="Output channels of each conv block (3x3 conv, batch norm, ReLU, 2x2 max pool).",
        ),
        Hyperparameter("image_size", "int", 64, min=8, max=512, help="Images are resized to this square."),
        Hyperparameter("augment_flip", "bool", True, help="Randomly flip training images left-right."),
        Hyperparameter(
            "num_workers",
            "int",
            2,
            min=0,
            max=32,
            help="Processes decoding images (0: the training process).",
        ),
        *torch_loop(epochs=10, batch_size=32, lr=1e-3, dropout=0.2),
    ]

    def check_hyperparameters(self, hp: dict) -> None:
        smallest = 2 ** len(hp["channels"])
        if hp["image_size"] < smallest:
            raise TrainerError(
                f"image_size: must be at least {smallest} for {len(hp['channels'])} conv blocks, "
                f"got {hp['image_size']}",
                code="invalid_hyperparameter",
                field="image_size",
            )
        if not hp["channels"]:
            raise TrainerError(
                "channels: at least one conv block is needed", code="invalid_hyperparameter", field="channels"
            )

    def feature_columns(self, *, schema: dict[str, str], target: str | None, hp: dict) -> list[str]:
        column = image_column(schema)
        if column is None:
            raise TrainerError(
                "no usable feature columns: image_classification needs an image column (an image dataset "
                f"version); columns: {', '.join(f'{name} ({kind})' for name, kind in schema.items())}",
                code="no_features",
            )
        return [column]

    def fit(
        self, data: TrainingData, *, target: str, hyperparameters: dict, context: TrainerContext
    ) -> dict[str, float]:
        import torch

        from training.trainers import torchfit
        from training.trainers.image_data import ImageDataset, flip_horizontal
        from training.trainers.modules import SmallCNN

        hp = self.validate(schema=data.schema, target=target, hyperparameters=hyperparameters)
        target = self.resolve_target(data.schema, target)
        seed = context.seed if hp["seed"] is None else hp["seed"]
        column = image_column(data.schema)
        if data.files_dir is None or not Path(data.files_dir).is_dir():
            raise TrainerError("the dataset version has no image files directory", code="invalid_data")
        has_split = "split" in data.schema and "split" not in (column, target)
        context.progress(0.0, "reading the dataset")
        frame = read_table(data, [column, target, *(["split"] if has_split else [])])
        targets = encode_target(frame[target], task=self.task, name=target)
        frame = frame.iloc[targets.rows].reset_index(drop=True)
        relative = [str(value) if value is not None else "" for value in frame[column].tolist()]
        paths = self._paths(Path(data.files_dir), relative, column)
        train_rows, validation_rows, split = split_rows(
            targets.values,
            task=self.task,
            validation_fraction=hp["validation_fraction"],
            seed=seed,
            split_values=frame["split"].to_numpy() if has_split else None,
        )
        prepared = torchfit.Prepared(targets, train_rows, validation_rows, split)
        labels = prepared.target_tensor(self.task)

        def subset(rows):
            return ImageDataset(
                [paths[row] for row in rows], labels[torch.from_numpy(rows)], hp["image_size"]
            )

        train_set, validation_set = subset(train_rows), subset(validation_rows)
        torchfit.seed_everything(seed, context.device)
        class_count = len(targets.labels)
        model = SmallCNN(3, hp["channels"], class_count, hp["dropout"])
        architecture = {
            "kind": "cnn",
            "in_channels": 3,
            "channels": hp["channels"],
            "output_size": class_count,
            "dropout": hp["dropout"],
        }
        config = torchfit.loop_config(
            self,
            hp,
            seed=seed,
            prepared=prepared,
            fingerprint={"target": target, "architecture": architecture, "rows": len(targets.values)},
            num_workers=hp["num_workers"],
            augment=flip_horizontal if hp["augment_flip"] else None,
        )
        size = hp["image_size"]
        return torchfit.run(
            self,
            model=model,
            config=config,
            train_set=train_set,
            validation_set=validation_set,
            context=context,
            prepared=prepared,
            target={"name": target, "type": data.schema[target]},
            hp=hp,
            card={
                "inputs": [{"name": column, "type": "image"}],
                "image_column": column,
                "preprocessing": {
                    "image_size": size,
                    "color_mode": "RGB",
                    "resize": "bilinear to image_size x image_size (aspect ratio not kept)",
                    "scale": 1 / 255,
                    "mean": [NORMALIZE_MEAN] * 3,
                    "std": [NORMALIZE_STD] * 3,
                    "layout": "CHW",
                },
                "augmentation": {"horizontal_flip": hp["augment_flip"]},
                "architecture": architecture,
            },
            example_input=torch.stack([train_set[0][0], train_set[0][0]]),
            torchscript_input=f"float32 images [batch, 3, {size}, {size}]: RGB scaled to [0, 1], then "
            "(x - 0.5) / 0.5 per channel",
        )

    @staticmethod
    def _paths(files_dir: Path, relative: list[str], column: str) -> list[Path]:
        from training.trainers.image_data import resolve_image

        paths = [resolve_image(files_dir, value) for value in relative]
        missing = [value for value, path in zip(relative, paths, strict=True) if not path.is_file()]
        if missing:
            examples = ", ".join(repr(value) for value in missing[:3])
            raise TrainerError(
                f"{len(missing):,} files named in column {column!r} are missing (e.g. {examples})",
                code="invalid_data",
                field=column,
            )
        return paths
