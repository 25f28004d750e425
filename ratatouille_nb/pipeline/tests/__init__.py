"""Data-test kinds, one class per file, registered by kind (see base.py)."""

from ratatouille_nb.pipeline.tests import (
    accepted_values,
    column_type,
    custom_sql,
    expression,
    freshness,
    generic_macro,
    not_null,
    positive,
    relationships,
    singular,
    unique,
)
from ratatouille_nb.pipeline.tests.base import REGISTRY, DataTest, RowTest, TestContext, data_test, register

__all__ = [
    "REGISTRY", "DataTest", "RowTest", "TestContext", "accepted_values", "column_type", "custom_sql", "data_test", "expression",
    "freshness", "generic_macro", "not_null", "positive", "register", "relationships", "singular", "unique",
]
