"""The TypeScript interfaces the JupyterLab extension compiles against are the server's models.

labextension/src/api.ts is generated from ratatouille_nb/server/models.py by server/tsgen.py;
these tests fail when either side changes alone, and check that the service's answers validate.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from ratatouille_nb.server import models, service, tsgen

API_TS = Path(__file__).resolve().parents[1] / "labextension" / "src" / "api.ts"


def test_checked_in_api_ts_is_what_the_models_generate() -> None:
    expected = tsgen.generate(models.RESPONSE_MODELS)
    assert API_TS.read_text() == expected, "run `python -m ratatouille_nb.server.tsgen > labextension/src/api.ts`"


def test_generated_interfaces_carry_each_field_and_its_optionality() -> None:
    text = tsgen.generate([models.PromoteRequest, models.Product])
    assert "  export interface IPromoteRequest {\n    path: string;\n    force?: boolean;\n    dry_run?: boolean;\n    skip?: number[];\n  }" in text
    assert "    schema: IColumn[];" in text
    assert "    description: string | null;" in text
    assert "export interface IColumn" in text and "export interface IVersion" in text


def test_an_unsupported_schema_is_an_error_not_any() -> None:
    class Odd(BaseModel):
        value: tuple[int, str]

    with pytest.raises(tsgen.UnsupportedSchema):
        tsgen.generate([Odd])


def test_models_refuse_a_missing_or_unknown_field() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        models.Reference(name="dev", kind="branch", hash="abc", protected=False, current=True)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        models.SkippedCell(cell=1, reason="x", extra=1)  # type: ignore[call-arg]


def test_error_bodies_keep_hint_and_extra_fields() -> None:
    body = service.ApiError(409, "would overwrite", hint="use force", conflicts=["a.sql"]).payload()
    assert body == {"message": "would overwrite", "hint": "use force", "conflicts": ["a.sql"]}
    assert service.ApiError(400, "bad").payload() == {"message": "bad"}
