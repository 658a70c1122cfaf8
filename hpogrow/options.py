"""Option groups that several commands share, each declared once, and how a field reads as a flag.

A command's config is a frozen dataclass whose fields are its flags: :mod:`hpogrow.cli` builds
the parser from each field's name (:func:`flag`), type, default and the docstring under it. A
group that several commands share is declared here once and inherited (``SearchConfig(StudyOptions,
RunOptions, GrowthOptions, ...)``), so its fields stay flat (``config.schedule``) and each group
checks its own fields in ``__post_init__``. Types say what the parser accepts: ``PositiveInt``,
``PositiveFloat``, ``Literal`` choices, ``tuple[..., ...]`` for several values, ``| None`` for
"not given".

This module imports nothing heavy: ``hpogrow --help`` builds its parser from it.
"""

from __future__ import annotations

import functools
import types
import typing
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from hpogrow.errors import UsageError

if TYPE_CHECKING:
    from typing import Self

    from hpogrow.tasks.base import Task

POSITIVE = "positive"
"""Marks an ``Annotated`` number that must lie above 0."""
PositiveInt = Annotated[int, POSITIVE]
"""An integer of at least 1 (checked by :class:`Options`, whoever builds the config)."""
PositiveFloat = Annotated[float, POSITIVE]
"""A number above 0."""
NOT_A_FLAG = {"flag": False}
"""Field metadata of a setting that the command line does not offer (Python callers only)."""

_FLAG_NAMES = {"learning_rate": "lr", "learning_rates": "lrs", "target_tokens_per_param": "tokens_per_param",
               "target_depth": "grow_depth", "from_checkpoint": "from"}
"""Fields whose flag is not their own name (the same spelling in every command)."""


def flag(name: str) -> str:
    """The command-line spelling of the config field ``name``: ``flag("base_width") == "--base-width"``."""
    return "--" + _FLAG_NAMES.get(name, name).replace("_", "-")


def bad_flag(name: str, value: Any, fix: str) -> UsageError:
    """The one-line error for field ``name`` holding ``value``, e.g. ``--lr -1: must be positive``."""
    shown = f"{value:g}" if isinstance(value, float) else list(value) if isinstance(value, tuple) else value
    return UsageError(f"{flag(name)} {shown}: {fix}")


@dataclass(frozen=True)
class FieldType:
    """A field's annotation taken apart: ``tuple[PositiveInt, ...] | None`` is ``int``, many,
    optional, positive."""

    base: Any
    """``int``, ``float``, ``str``, ``bool``, a ``Literal[...]``, or a ``Union`` of them."""
    many: bool = False
    optional: bool = False
    positive: bool = False


def field_type(hint: Any) -> FieldType:
    """:class:`FieldType` of a resolved annotation."""
    optional = many = positive = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint):
        optional = True
        rest = tuple(arg for arg in typing.get_args(hint) if arg is not type(None))
        hint = rest[0] if len(rest) == 1 else typing.Union[rest]
    if typing.get_origin(hint) is tuple:
        many, hint = True, typing.get_args(hint)[0]
    if typing.get_origin(hint) is Annotated:
        positive, hint = POSITIVE in hint.__metadata__, typing.get_args(hint)[0]
    return FieldType(hint, many, optional, positive)


@functools.cache
def field_types(config_class: type) -> dict[str, FieldType]:
    """Each dataclass field of ``config_class`` by name, with its :class:`FieldType`."""
    hints = typing.get_type_hints(config_class, include_extras=True)
    return {item.name: field_type(hints[item.name]) for item in fields(config_class)}


@dataclass(frozen=True)
class Options:
    """Base of every config and option group: checks the fields typed ``PositiveInt``/``PositiveFloat``.

    A group extends ``__post_init__`` (calling ``super().__post_init__()`` first) with checks of its
    own fields, each raising :func:`bad_flag`'s one-line :class:`UsageError`.
    """

    GROUP: ClassVar[str | None] = None
    """Heading of the group's flags in ``--help`` (``None``: among the command's own options)."""

    def __post_init__(self) -> None:
        for name, kind in field_types(type(self)).items():
            value = getattr(self, name)
            if kind.positive and value is not None and not all(item > 0 for item in (value if kind.many else [value])):
                raise bad_flag(name, value, "must be positive" if kind.base is float else "must be a positive integer")


@dataclass(frozen=True)
class TaskOptions(Options):
    """The model family and data a command trains on; :meth:`build_task` makes the task."""

    GROUP: ClassVar[str | None] = "task and data"

    task: Literal["lm", "mlp"] = "lm"
    """lm: GPT on text, token files or the synthetic language; mlp: residual MLP on the Fourier target."""
    depth: PositiveInt = 2
    """Transformer blocks (lm) or residual blocks (mlp)."""
    head_size: PositiveInt = 32
    """Attention head size of the lm; its widths are multiples of it."""
    seq_len: PositiveInt = 128
    """Context length of the lm."""
    data: str | None = None
    """Data of the lm: synthetic or synthetic:SEED (the built-in synthetic language: unbounded, known
    entropy floor), a folder with nanoGPT's train.bin/val.bin, a folder of text files, or a text file
    (default: the CPython standard library source, no download)."""
    vocab_size: PositiveInt | None = None
    """Vocabulary of train.bin/val.bin (default: meta.pkl's, else GPT-2's 50,257 as nanoGPT assumes); a
    larger value pads it, e.g. 50304 as nanoGPT does."""
    dtype: Literal["uint16", "uint32"] = "uint16"
    """Integer type of train.bin/val.bin (uint16 as nanoGPT writes; uint32 for vocabularies above 65,536)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.task != "lm":
            lm_only = [flag(item.name) for item in fields(TaskOptions)
                       if item.name not in ("task", "depth") and getattr(self, item.name) != item.default]
            if lm_only:
                raise UsageError(f"{', '.join(lm_only)}: only for --task lm; the {self.task} task generates its "
                                 "data from --seed")

    def build_task(self, seed: int = 0) -> Task:
        """The task these options name (``seed`` draws the mlp task's Fourier target)."""
        from hpogrow.tasks import FourierTask, LanguageTask

        if self.task == "mlp":
            return FourierTask(depth=self.depth, seed=seed)
        return LanguageTask(depth=self.depth, head_size=self.head_size, seq_len=self.seq_len, data=self.data,
                            vocab_size=self.vocab_size, dtype=self.dtype)


@dataclass(frozen=True)
class WorkdirOptions(Options):
    """Where a command writes."""

    GROUP: ClassVar[str | None] = "storage"

    workdir: str = "studies"
    """Home of the default storage, checkpoints, runs, plots and artifacts."""


@dataclass(frozen=True)
class StudyOptions(WorkdirOptions):
    """The Optuna study a command records in."""

    GROUP: ClassVar[str | None] = "storage"

    study: str | None = None
    """Optuna study name; rerunning continues it (default: search {task}-w{base_width}, the prefix of
    its studies; transfercheck {task}-transfer; advise {task}-advice; report lm-w128)."""
    storage: str | None = None
    """Optuna storage: sqlite:///FILE.db, an RDB URL, or journal:FILE.log (default
    sqlite:///{workdir}/hpogrow.db)."""


@dataclass(frozen=True)
class RunOptions(WorkdirOptions):
    """How every training run of a command trains."""

    GROUP: ClassVar[str | None] = "training"

    schedule: Literal["constant", "wsd"] = "constant"
    """Learning-rate schedule of every run (wsd: warmup-stable-decay; the last 20% of steps decay
    linearly to 0)."""
    evaluations: PositiveInt = 16
    """Held-out evaluations per run."""
    seed: int = 0
    """Seed of the sampler and of every model initialisation; commands that run several seeds
    start from it."""
    device: str = "auto"
    """auto (CUDA when present), cpu, cuda, cuda:N."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """Training precision; bf16 runs forward and backward under autocast."""
    compile: bool = False
    """``torch.compile`` every run's model (pays off on a GPU for long runs)."""
    allow_repeat: bool = False
    """Run even if the training tokens would be read more than once (refused by default); each run
    records its passes over the data."""


@dataclass(frozen=True)
class ThreadOptions(Options):
    """CPU threads of the small runs of a sweep."""

    GROUP: ClassVar[str | None] = "training"

    threads: PositiveInt = 1
    """CPU threads of each run (torch's intra-op threads, restored afterwards). The models are
    small: on a busy 2-core machine two threads per run made each step 8-100x slower
    (bench/RESULTS.md)."""


@dataclass(frozen=True)
class GrowthOptions(Options):
    """How a base model is grown (see :mod:`hpogrow.growth`)."""

    GROUP: ClassVar[str | None] = "growth"

    grow_factor: float | Literal["auto"] = field(default=2.0, metadata={"aliases": ("--factor",)})
    """Growth factor g = target parameters / base parameters (paper 000: 2 is most reliable);
    auto: the g recommended by the task's stored growth advice (``hpogrow advise``)."""
    target_width: PositiveInt | None = field(default=None, metadata={"aliases": ("--grow-width",)})
    """Target width (overrides the width chosen from ``grow_factor``)."""
    target_depth: PositiveInt | None = None
    """Target depth of depth operators (overrides the depth chosen from ``grow_factor``)."""
    grow_op: str = "szp"
    """Growth operator(s): szp, zero-pad, clone, stack, zero-block, or WIDTH+DEPTH such as szp+zero-block."""
    shrink: float = 0.4
    """λ_shrink of szp (eq. 1 of paper 002; above 0.6 warns)."""
    noise_scale: float | None = None
    """Perturbation scale of the width operator: μP init × this (default 1 for szp, 0.1 for clone)."""
    carry_optimizer: bool = False
    """Carry Adam moments through growth, zero-padded (an experiment; the papers start fresh)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.grow_factor, str) and self.grow_factor != "auto":
            raise bad_flag("grow_factor", self.grow_factor, "give a number above 1 or auto")
        if not 0 <= self.shrink <= 1:
            raise bad_flag("shrink", self.shrink, "must be between 0 and 1 (paper 002 uses 0.4)")
        from hpogrow.growth import parse_operators  # torch: not at import (hpogrow --help)

        parse_operators(self.grow_op)


@dataclass(frozen=True)
class TaskDefaults(Options):
    """A config whose ``None`` fields take the defaults of the task it runs on (:meth:`for_task`)."""

    TASK_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {}
    """Per task name, the default of each field that depends on the task."""

    def for_task(self, task: Task) -> Self:
        """This config with the task's defaults filled in, checked against the task."""
        names = [item.name for item in fields(self)
                 if any(item.name in defaults for defaults in self.TASK_DEFAULTS.values())]
        missing = [name for name in names if getattr(self, name) is None]
        if missing and task.name not in self.TASK_DEFAULTS:
            raise UsageError(f"task {task.name!r} has no defaults for {', '.join(map(flag, missing))}; pass them")
        resolved = replace(self, **{name: self.TASK_DEFAULTS[task.name][name] for name in missing})
        return resolved.checked_for(task)

    def checked_for(self, task: Task) -> Self:
        """Checks (and completions) that need the task; :meth:`for_task` calls it on the filled-in config."""
        return self
