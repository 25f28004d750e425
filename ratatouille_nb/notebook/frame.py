"""`RatFrame`: a pandas DataFrame that displays as a `%%rat sql` result (rows, types, time, branch)."""

from __future__ import annotations

from typing import Any

import pandas as pd


class RatFrame(pd.DataFrame):
    """Behaves exactly like its DataFrame; only the notebook display adds the result header."""

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def _repr_html_(self) -> str | None:
        info = self.attrs.get("rat_info")
        return info.to_html() if info is not None else super()._repr_html_()

    def __repr__(self) -> str:
        info = self.attrs.get("rat_info")
        return info.to_text() if info is not None else super().__repr__()

    def plain(self) -> pd.DataFrame:
        return pd.DataFrame(self)


def unwrap(value: Any) -> Any:
    return pd.DataFrame(value) if isinstance(value, RatFrame) else value
