"""The two kinds of config section every part of the search schema is built from."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

from nas.core.seeds import check_seed

#: A seed field: the kernel's one rule (an integer in ``[0, 2**63)``).
Seed = Annotated[int, AfterValidator(check_seed)]


class Section(BaseModel):
    """A config section: unknown fields are typos and are refused; NaN/inf never make sense."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PluginSection(BaseModel):
    """A section naming a plugin; the fields besides ``name`` are the plugin's options.

    The options are checked where the plugin is built (``nas.runner.plan``),
    since only the plugin knows them; the schema checks the name.
    """

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    name: str

    @property
    def options(self) -> dict[str, Any]:
        """The plugin options (every field except ``name``)."""
        return dict(self.model_extra or {})


__all__ = ["PluginSection", "Section", "Seed"]
