"""tabular_classification and tabular_regression: an MLP on standardized numbers and one-hot categories."""

from __future__ import annotations

from training.trainers.base import Hyperparameter, Trainer, TrainerContext, TrainingData
from training.trainers.hyperparameters import MAX_CATEGORIES, torch_loop
from training.trainers.preprocessing import (
    TabularPreprocessor,
    encode_target,
    read_table,
    require_tabular_features,
    split_rows,
    tabular_columns,
)

HIDDEN_LAYERS = Hyperparameter(
    "hidden_layers",
    "int_list",
    (64, 32),
    min=1,
    max=4096,
    max_length=8,
    help="Width of each hidden layer, e.g. [64, 32]; [] is a linear model.",
)


class TabularMLPTrainer(Trainer):
    data_kind = "tabular"
    hyperparameters = [
        HIDDEN_LAYERS,
        MAX_CATEGORIES,
        *torch_loop(epochs=20, batch_size=64, lr=1e-3, dropout=0.1),
    ]

    def feature_columns(self, *, schema: dict[str, str], target: str | None, hp: dict) -> list[str]:
        return require_tabular_features(schema, target)

    def fit(
        self, data: TrainingData, *, target: str, hyperparameters: dict, context: TrainerContext
    ) -> dict[str, float]:
        import torch

        from training.trainers import torchfit
        from training.trainers.loop import TensorDataset
        from training.trainers.modules import MLP, ScaledOutput

        hp = self.validate(schema=data.schema, target=target, hyperparameters=hyperparameters)
        target = self.resolve_target(data.schema, target)
        seed = context.seed if hp["seed"] is None else hp["seed"]
        columns, dropped = tabular_columns(data.schema, target)
        context.progress(0.0, "reading the dataset")
        frame = read_table(data, [*columns, target])
        targets = encode_target(frame[target], task=self.task, name=target)
        frame = frame.iloc[targets.rows].reset_index(drop=True)
        train_rows, validation_rows, split = split_rows(
            targets.values, task=self.task, validation_fraction=hp["validation_fraction"], seed=seed
        )
        prepared = torchfit.Prepared(targets, train_rows, validation_rows, split)
        if self.task == "regression":
            torchfit.scale_regression(prepared)
        preprocessor = TabularPreprocessor.fit(
            frame.iloc[train_rows], columns, max_categories=hp["max_categories"]
        )
        features = torch.from_numpy(preprocessor.transform(frame))
        target_values = prepared.target_tensor(self.task)
        train_index, validation_index = torch.from_numpy(train_rows), torch.from_numpy(validation_rows)

        torchfit.seed_everything(seed, context.device)
        output_size = len(targets.labels) if self.task == "classification" else 1
        model = MLP(preprocessor.output_size, hp["hidden_layers"], output_size, hp["dropout"])
        architecture = {
            "kind": "mlp",
            "input_size": preprocessor.output_size,
            "hidden_layers": hp["hidden_layers"],
            "output_size": output_size,
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
        export = (
            model
            if self.task == "classification"
            else ScaledOutput(model, prepared.target_mean, prepared.target_std)
        )
        inputs = [{"name": column["name"], "type": column["type"]} for column in preprocessor.columns]
        return torchfit.run(
            self,
            model=model,
            config=config,
            train_set=TensorDataset(features[train_index], target_values[train_index]),
            validation_set=TensorDataset(features[validation_index], target_values[validation_index]),
            context=context,
            prepared=prepared,
            target={"name": target, "type": data.schema[target]},
            hp=hp,
            card={
                "inputs": inputs,
                "dropped_columns": dropped + preprocessor.spec["dropped"],
                "preprocessing": {**preprocessor.spec, "feature_names": preprocessor.feature_names},
                "architecture": architecture,
            },
            example_input=features[train_index[:2]],
            export_module=export,
            torchscript_input="float32 features [batch, input_size] after the recorded `preprocessing` "
            "(standardized numerics, then one-hot blocks, in `preprocessing.feature_names` order)",
        )


class TabularClassificationTrainer(TabularMLPTrainer):
    name = "tabular_classification"
    title = "Tabular classification (MLP)"
    task = "classification"
    target_types = ("categorical", "boolean", "numeric")


class TabularRegressionTrainer(TabularMLPTrainer):
    name = "tabular_regression"
    title = "Tabular regression (MLP)"
    task = "regression"
    target_types = ("numeric",)
