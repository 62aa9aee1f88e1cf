"""The evaluation options, declared once: name, type, default, rule and help text of each.

:data:`OPTIONS` is the declaration; the pydantic model :class:`EvaluationOptions` is generated from
it, and so are the three entries that take the options:

* :func:`receval.evaluate` — keyword arguments, whose defaults are the declared ones;
* the configuration file's ``evaluation`` section (:class:`receval.config.EvaluationSection`, a
  subclass that adds the section's own keys);
* ``receval evaluate``'s flags (``--exp-base`` ...: :func:`receval.cli._common.evaluation_option`
  takes default and help from :data:`OPTIONS`, and the command validates through the model).

The engine's :class:`~receval.metrics.engine.EvaluationConfig` is a subclass too. A value is thus
refused by one rule wherever it comes from; only the name in the message differs (``exp_base`` for
the API, ``'evaluation.exp_base'`` in a file, ``--exp-base`` on the command line). Before, the
options were declared three times and disagreed: the engine took ``exp_base = 1.5``, which the
configuration refused.

The declaration is plain data so that the command line can build its flags without importing
pydantic (every ``receval`` call would pay for it); the model is built on first use.

Examples
--------
>>> EvaluationOptions().exp_base
0.85
>>> EvaluationOptions.checked(exp_base=1.5)
Traceback (most recent call last):
...
receval.errors.ConfigError: exp_base 1.5: Input should be less than or equal to 1
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from receval.errors import ConfigError

#: The largest cutoff: the engine allocates arrays of K positions per list, so a typo like 10000000000
#: would be a memory error, not a result.
MAX_CUTOFF = 100_000
DISTANCES = ("cosine", "jaccard", "ratings")
EPD_PROFILES = ("unweighted", "relevance")


@dataclass(frozen=True)
class Option:
    """One evaluation option.

    ``kind`` is ``int``, ``float`` or ``str``; the value is strictly of that kind (an ``int`` is a
    ``float``; ``true``, ``"4"`` are refused, not coerced). ``choices`` restricts a ``str``; ``ge``,
    ``gt``, ``le`` bound a number, ``finite`` refuses NaN and ±inf; ``optional``: ``None`` is a value
    (unset); ``many``: a non-empty list or tuple of such values, kept sorted and unique.
    ``run_default``: the default of a pipeline run (``receval run``, a configuration file's
    ``evaluation`` section) where it differs on purpose from ``default``, else ``...``.
    """

    name: str
    kind: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    finite: bool = False
    optional: bool = False
    many: bool = False
    run_default: Any = ...

    @property
    def default_of_a_run(self) -> Any:
        return self.default if self.run_default is ... else self.run_default


OPTIONS: tuple[Option, ...] = (
    # a run compares algorithms at a short and a long list; evaluate on files reports the common @10
    Option("cutoffs", int, (10,), "Cutoffs N of the top-N lists, computed in one pass", ge=1, le=MAX_CUTOFF,
           many=True, run_default=(10, 50)),
    Option("threshold", float, 4.0, "Relevance threshold τ (rating >= τ is relevant).", finite=True),
    Option("distance", str, "cosine", "Item distance: cosine or jaccard over features, or ratings (cosine over "
           "train user vectors: needs the whole train, so a shard still reads all of it).", choices=DISTANCES),
    Option("alpha", float, 0.5, "alpha-nDCG redundancy penalty, in [0, 1].", ge=0.0, le=1.0, finite=True),
    # b^(k-1) with b > 1 would reward lower ranks more: no longer a discount
    Option("exp_base", float, 0.85, "Base b of the exp discount b^(k-1), in (0, 1].", gt=0.0, le=1.0, finite=True),
    Option("background", float, 0.0, "Prior relevance of unjudged items (background model).", finite=True),
    Option("epd_profile", str, "unweighted", "EPD profile: unweighted (RankSys) or relevance (the paper's weighted "
           "profile).", choices=EPD_PROFILES),
    Option("catalog", int, None, "Catalogue size for Gini (unset: the distinct items of train ∪ test).", ge=1,
           optional=True),
)
BY_NAME: Mapping[str, Option] = {option.name: option for option in OPTIONS}


def default(name: str) -> Any:
    """The declared default of option ``name``."""
    return BY_NAME[name].default


def defaults() -> dict[str, Any]:
    """Each option's default."""
    return {option.name: option.default for option in OPTIONS}


# ------------------------------------------------------------------------------------------------ the model


def annotation(option: Option) -> Any:
    """The pydantic type of ``option``: its kind, strict, under its rule."""
    from typing import Annotated, Literal

    from pydantic import AfterValidator, Field, Strict

    bounds = {k: v for k, v in (("ge", option.ge), ("gt", option.gt), ("le", option.le)) if v is not None}
    if option.finite:
        bounds["allow_inf_nan"] = False
    one: Any = (Literal[option.choices] if option.choices  # type: ignore[valid-type]
                else Annotated[option.kind, Strict(), Field(**bounds)])
    if option.many:
        # a list (a file, a flag) or a tuple (the API); a text is not a list of cutoffs
        one = Annotated[tuple[one, ...], Field(min_length=1, strict=False),
                        AfterValidator(lambda value: tuple(sorted(set(value))))]
    if option.optional:
        one = one | None
    return one


def field(option: Option, default: Any = ...) -> Any:
    """``(type, Field)`` of ``option`` for a pydantic model (``default``: another default than the declared)."""
    from pydantic import Field

    return annotation(option), Field(option.default if default is ... else default, description=option.help)


@functools.cache
def _model() -> type:
    from pydantic import BaseModel, ConfigDict, ValidationError, create_model

    class Base(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

        @classmethod
        def checked(cls, **values: Any) -> Any:
            """Validate ``values``; a violation is one :class:`ConfigError` naming the option."""
            try:
                return cls(**values)
            except ValidationError as exc:
                raise option_error(exc) from None

        def options(self) -> dict[str, Any]:
            """The values of the declared options only (a subclass's own fields left out)."""
            return {option.name: getattr(self, option.name) for option in OPTIONS}

    model = create_model(  # type: ignore[call-overload]
        "EvaluationOptions", __base__=Base, __module__=__name__, **{o.name: field(o) for o in OPTIONS}
    )
    model.__doc__ = ("What the metrics are computed with (docs/metrics.md): the fields of :data:`OPTIONS`, "
                     "strict (``cutoffs: ['10']``, ``catalog: true`` are refused, not coerced) and frozen.")
    return model


def __getattr__(name: str) -> Any:
    if name == "EvaluationOptions":
        return _model()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def rule(error: Mapping[str, Any]) -> str:
    """The rule a pydantic error reports, worded the same for every entry."""
    if error["type"] == "finite_number":
        return "must be a finite number"
    return str(error["msg"]).removeprefix("Value error, ")


def option_error(exc: Any) -> ConfigError:
    """The first violation of a pydantic ``ValidationError`` as ``NAME VALUE: RULE``, naming the
    option (the CLI shows its flag instead)."""
    error = exc.errors()[0]
    loc = error["loc"]
    name = str(loc[0]) if loc else ""
    if error["type"] == "extra_forbidden":
        return ConfigError(f"{name}: not an evaluation option (the options: {', '.join(BY_NAME)})", option=name)
    return ConfigError(f"{name} {error.get('input')!r}: {rule(error)}", option=name)


def check(**values: Any) -> Any:
    """The options ``values`` (the others at their defaults) as an ``EvaluationOptions``, or a
    :class:`ConfigError` naming the first bad one."""
    return _model().checked(**values)


def check_cutoffs(cutoffs: Any) -> tuple[int, ...]:
    """The cutoffs under their rule (for an entry that takes cutoffs and no other option)."""
    return check(cutoffs=cutoffs).cutoffs


__all__ = ["BY_NAME", "DISTANCES", "EPD_PROFILES", "EvaluationOptions", "MAX_CUTOFF", "OPTIONS", "Option",
           "annotation", "check", "check_cutoffs", "default", "defaults", "field", "option_error", "rule"]
