"""Dataset rows and files for tests: a real Parquet file in the artifact store, no worker needed."""

import tempfile
from pathlib import Path

import factory
import pyarrow as pa
import pyarrow.parquet as pq

from datasets import files
from datasets.models import Dataset, DatasetJob, DatasetVersion, Recipe
from studio.core.testing import ProjectFactory

DEFAULT_TABLE = {
    "age": [31, 42, None, 25, 58, 42],
    "city": ["Paris", "Lyon", "Paris", "Nice", "Paris", "Lyon"],
    "income": [52.5, 61.0, 40.25, None, 88.0, 61.0],
    "churned": [False, True, False, False, True, True],
}
DEFAULT_SCHEMA = [
    {"name": "age", "type": "numeric", "arrow_type": "int64"},
    {"name": "city", "type": "categorical", "arrow_type": "string"},
    {"name": "income", "type": "numeric", "arrow_type": "double"},
    {"name": "churned", "type": "boolean", "arrow_type": "bool"},
]


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"dataset-{n}")


def make_version(
    *,
    dataset: Dataset,
    table: dict | None = None,
    schema: list | None = None,
    number: int | None = None,
    parent=None,
) -> DatasetVersion:
    table = table or DEFAULT_TABLE
    arrow = pa.table(table)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.parquet"
        pq.write_table(arrow, path)
        sha256 = files.sha256_of(path)
        number = number or (dataset.versions.count() + 1)
        storage_name = files.store_file(
            f"{dataset.storage_prefix}/v{number}-{sha256[:12]}/data.parquet", path
        )
        size = path.stat().st_size
    return DatasetVersion.objects.create(
        dataset=dataset,
        number=number,
        sha256=sha256,
        source_format="parquet",
        source_name="test.parquet",
        schema=schema or DEFAULT_SCHEMA,
        row_count=arrow.num_rows,
        size_bytes=size,
        storage_name=storage_name,
        parent=parent,
    )


def make_iris_version(*, name: str = "iris", project=None) -> DatasetVersion:
    """scikit-learn's iris as a dataset version: four numeric columns (sepal_length, …, petal_width) and
    the categorical target `species` holding the class names."""
    # imported here: scikit-learn is slow to import and most tests using these factories never need it
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True)
    frame = iris.frame.rename(columns=lambda column: column.replace(" (cm)", "").replace(" ", "_"))
    frame["species"] = [iris.target_names[index] for index in frame.pop("target")]
    table = {column: frame[column].tolist() for column in frame.columns}
    schema = [{"name": column, "type": "numeric", "arrow_type": "double"} for column in frame.columns[:-1]]
    schema.append({"name": "species", "type": "categorical", "arrow_type": "string"})
    dataset = DatasetFactory(name=name, **({"project": project} if project is not None else {}))
    return make_version(dataset=dataset, table=table, schema=schema)


class RecipeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Recipe

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"recipe-{n}")
    steps = factory.LazyFunction(lambda: [{"type": "drop", "columns": ["city"]}])


class DatasetJobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DatasetJob

    project = factory.SubFactory(ProjectFactory)
    kind = DatasetJob.Kind.UPLOAD
    dataset_name = "uploaded"
