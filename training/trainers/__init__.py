"""Built-in trainers: pure modules (no Django) driven through a TrainerContext.

Importing this package is light (no torch, no scikit-learn): the web process validates a job with
`get_trainer(name).validate(...)` before queueing it; `fit` imports the heavy libraries.
"""

from training.trainers.artifacts import LoadedModel, load_model, predict
from training.trainers.base import (
    Hyperparameter,
    Trainer,
    TrainerContext,
    TrainerError,
    TrainingData,
    TrainingDiverged,
)
from training.trainers.image import ImageClassificationTrainer
from training.trainers.sklearn_baselines import (
    SklearnLogisticRegressionTrainer,
    SklearnRandomForestRegressorTrainer,
    SklearnRandomForestTrainer,
    SklearnRidgeTrainer,
)
from training.trainers.tabular import TabularClassificationTrainer, TabularRegressionTrainer
from training.trainers.text import TextClassificationTrainer

TRAINERS: dict[str, Trainer] = {
    trainer.name: trainer
    for trainer in (
        TabularClassificationTrainer(),
        TabularRegressionTrainer(),
        ImageClassificationTrainer(),
        TextClassificationTrainer(),
        SklearnLogisticRegressionTrainer(),
        SklearnRandomForestTrainer(),
        SklearnRidgeTrainer(),
        SklearnRandomForestRegressorTrainer(),
    )
}


def get_trainer(name: str) -> Trainer:
    try:
        return TRAINERS[name]
    except (KeyError, TypeError):
        import difflib

        matches = difflib.get_close_matches(str(name), list(TRAINERS), n=1)
        hint = f" (did you mean {matches[0]!r}?)" if matches else ""
        raise TrainerError(
            f"unknown trainer {name!r}{hint}; known: {', '.join(TRAINERS)}",
            code="unknown_trainer",
            field="trainer",
        ) from None


__all__ = [
    "TRAINERS",
    "Hyperparameter",
    "LoadedModel",
    "Trainer",
    "TrainerContext",
    "TrainerError",
    "TrainingData",
    "TrainingDiverged",
    "get_trainer",
    "load_model",
    "predict",
]
