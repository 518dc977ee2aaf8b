"""The base of every manifest model: how keys are spelt and what a value may be."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ManifestModel(BaseModel):
    """camelCase keys in YAML, snake_case in Python; unknown keys are errors; values are final.

    A new section is one more field on :class:`Manifest` (``repository_results:`` becomes the
    ``repositoryResults:`` key); line numbers and error messages need nothing more.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=True,  # Python callers may use field names; manifests use aliases only
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
        coerce_numbers_to_str=True,  # an all-digit public id or scan id is still an id
        use_attribute_docstrings=True,
        field_title_generator=lambda name, field: field.alias or to_camel(name),
    )
