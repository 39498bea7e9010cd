"""The ``key=value`` command line of validation.py, predict.py, the ``benchmark.py`` subcommands and the scripts/ tables.

Every entry point takes ``key=value`` arguments, as Hydra's main.py and benchmark.py do. A
:class:`KeyValueParser` knows the keys of its entry point (:class:`Key`): their values are parsed with Hydra's
override grammar (``crop_size=[512,512]``, ``flip=true``, ``out='/tmp/my dir'``), and path or text values holding
characters the grammar does not take unquoted (older run-folder names with ``=`` and ``,``) are quoted first
(:func:`core.run_folder.quote_path_overrides`). Other ``key=value`` arguments are the entry point's config
overrides, passed on unchanged as strings, or, for an entry point without config overrides, an error.

Older spellings (``--valdir X``, ``--fit-temperature``, positional image paths) are accepted through
:class:`Legacy` entries and print one line on stderr naming the new spelling. ``-h``/``--help`` prints the keys and
exits with status 0; a usage error is one line ``<prog>: error: <message> (see --help)`` and exit status 2.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from core.errors import unquoted_space
from core.run_folder import quote_path_overrides

#: value kinds: one value (``str``, ``int``, ``float``, ``bool``, ``path``, ``text``), a list of them
#: (``list``, ``ints``, ``floats``), ``texts`` (a repeatable key: each ``key=value`` adds one text or path, for values
#: no list could hold unquoted, e.g. shell commands), or ``override`` (kept as a ``key=value`` string among the
#: overrides)
KINDS = ("str", "path", "text", "texts", "int", "float", "bool", "list", "ints", "floats", "override")
_QUOTED = ("path", "text", "texts")  # values quoted before parsing when the grammar does not take them unquoted
_SCALAR = {"int": int, "float": float}
_LIST_OF = {"list": "str", "ints": "int", "floats": "float"}


@dataclass(frozen=True)
class Key:
    """One ``key=value`` argument of an entry point.

    Args:
        name: the key (underscores, as in the configs: ``crop_size``).
        help: one line for ``--help``.
        kind: one of :data:`KINDS`.
        default: the value when the key is not given.
        metavar: the value as shown in ``--help`` and deprecation lines (default: the kind).
        choices: the allowed values (empty: any).
        required: the command fails without it.
    """

    name: str
    help: str
    kind: str = "str"
    default: Any = None
    metavar: str = ""
    choices: tuple = ()
    required: bool = False

    @classmethod
    def switch(cls, name: str, help: str) -> Key:
        """A boolean key that is false unless given (``name=true``)."""
        return cls(name, help, "bool", default=False, metavar="true")

    def spelling(self) -> str:
        """``name=<metavar>``, the way ``--help`` and deprecation lines show the key."""
        return f"{self.name}={self.metavar or '<' + self.kind + '>'}"


# The one way an entry point names a run: a run folder, a .ckpt or a weights file (validation.py, predict.py).
CHECKPOINT_KEY = Key(
    "checkpoint",
    "run folder of main.py (checkpoints/<which>.ckpt), a .ckpt, or a .pth/.pt weights file",
    "path",
    metavar="<run folder|file>",
)
WHICH_KEY = Key("which", "checkpoint of a run folder", default="best", metavar="best|last", choices=("best", "last"))


@dataclass(frozen=True)
class Legacy:
    """An older ``--flag`` spelling of a key, still accepted with one deprecation line.

    Args:
        flag: the old option (``--valdir``).
        key: the key it sets, or a function of the value returning the key (``--ckpt best`` -> ``which``).
        nargs: 0 (a switch: the key becomes true), 1 (one value) or ``"+"`` (the numbers that follow).
        use: the new spelling named by the deprecation line (default: the key's ``name=<metavar>``).
        value: a function of the value giving the key's value (``--peak int8=0.9`` -> key ``peak.int8``, value
            ``0.9``; default: the value itself).
    """

    flag: str
    key: str | Callable[[str], str]
    nargs: int | str = 1
    use: str = ""
    value: Callable[[str], str] | None = None


class UsageError(ValueError):
    """A command line the parser cannot take (printed as one line by :meth:`KeyValueParser.parse`)."""


class KeyValueParser:
    """The ``key=value`` parser of one entry point (see the module docstring).

    Args:
        prog: the entry point as named in messages (``benchmark.py compare``).
        keys: its keys.
        usage: the synopsis lines shown first by ``--help``.
        description: text shown after the keys by ``--help``.
        config_keys: top-level config keys taken as config overrides (``dataset``, ``model``, ...); None: the entry
            point has no config overrides, every key must be one of ``keys``.
        legacy: older ``--flag`` spellings.
        positional: the key that takes arguments without ``=`` or naming an existing path (older spelling, one
            deprecation line): a list key collects them, a one-value key takes one.
        literal: arguments that are never part of a value the shell split at a space (:func:`core.errors.unquoted_space`).
        positional_too: arguments with ``=`` and no key of ``keys`` before it that the older spelling took as positional
            ones (robustness_table.py: ``<label>=<folder>`` of an existing folder).
    """

    def __init__(
        self,
        prog: str,
        keys: Sequence[Key],
        usage: str,
        description: str = "",
        config_keys: Collection[str] | None = None,
        legacy: Sequence[Legacy] = (),
        positional: str | None = None,
        literal: Callable[[str], bool] = lambda a: False,
        positional_too: Callable[[str], bool] = lambda a: False,
    ):
        self.prog, self.usage, self.description = prog, usage, description
        self.keys = {k.name: k for k in keys}
        self.config_keys = None if config_keys is None else set(config_keys)
        self.legacy = {entry.flag: entry for entry in legacy}
        self.positional, self.literal, self.positional_too = positional, literal, positional_too
        bad = [k.name for k in keys if k.kind not in KINDS] + [p for p in [positional] if p and p not in self.keys]
        if bad:
            raise ValueError(f"{prog}: keys of unknown kind or missing: {bad}")

    def help_text(self) -> str:
        """What ``--help`` prints: the synopsis, the keys with their defaults, the older spellings."""
        width = max(len(k.spelling()) for k in self.keys.values()) + 2
        lines = [
            f"usage: {self.prog} key=value ...",
            textwrap.indent(textwrap.dedent(self.usage).strip("\n"), "  "),
            "",
            "keys:",
        ]
        for k in self.keys.values():
            note = (
                " (required)" if k.required else "" if k.default in (None, False, (), "") else f" (default {k.default})"
            )
            lines.append(f"  {k.spelling():<{width}}{k.help}{note}")
        if self.config_keys is not None:
            lines.append("  <key>=<value> ...".ljust(width + 2) + "config overrides (unknown keys are errors)")
        if self.legacy or self.positional:
            old = [f"{f.flag}" for f in self.legacy.values()] + (["positional arguments"] if self.positional else [])
            lines += ["", f"Deprecated spellings, still accepted with a warning: {', '.join(old)}."]
        if self.description:
            lines += ["", self.description.strip()]
        return "\n".join(lines)

    def error(self, message: str):
        """Print ``<prog>: error: <message> (see --help)`` on stderr and exit with status 2."""
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr, flush=True)
        sys.exit(2)

    def parse(self, argv: Sequence[str] | None = None) -> SimpleNamespace:
        """Parse ``argv`` (default ``sys.argv[1:]``): ``-h``/``--help`` prints :meth:`help_text` and exits 0, a usage
        error exits 2 with one line (:meth:`error`), older spellings print one deprecation line on stderr.

        Returns:
            a namespace with one attribute per key (its value or default) and ``overrides``, the config overrides
            in the order given (``override`` keys included).
        """
        argv = list(sys.argv[1:] if argv is None else argv)
        if any(a in ("-h", "--help") for a in argv):
            print(self.help_text())
            sys.exit(0)
        try:
            values, overrides, deprecated = self.split(argv)
        except UsageError as e:
            self.error(str(e))
        if deprecated:
            print(f"{self.prog}: {'; '.join(deprecated)}", file=sys.stderr, flush=True)
        return SimpleNamespace(**values, overrides=overrides)

    def split(self, argv: Sequence[str]) -> tuple[dict, list[str], list[str]]:
        """``argv`` -> (values of the keys, defaults filled in; config overrides; deprecation messages).

        Raises:
            UsageError: a value the shell split at a space, an unknown key or option, a bad value, a missing
                required key (one line).
        """
        split = unquoted_space(argv, literal=self.literal)
        if split:
            raise UsageError(split)
        quoted = [k.name for k in self.keys.values() if k.kind in _QUOTED]
        values, overrides, deprecated, given, rest = {}, [], {}, [], list(argv)
        while rest:
            arg = rest.pop(0)
            if arg.startswith("-") and not _is_number(arg):
                self._legacy(arg, rest, values, deprecated)
                continue
            key, eq, _ = arg.partition("=")
            older = key not in self.keys and self.positional_too(arg)
            if self.positional and (not eq or os.path.exists(arg) or older):
                pos = self.keys[self.positional]
                if pos.kind in (*_LIST_OF, "texts"):
                    values.setdefault(self.positional, []).append(arg)
                elif self.positional in values:
                    raise UsageError(f"one {pos.spelling()} expected, got {values[self.positional]!r} and {arg!r}")
                else:
                    values[self.positional] = arg
                deprecated[self.positional] = (
                    f"positional arguments are deprecated, use {self.keys[self.positional].spelling()}"
                )
                continue
            if not eq:
                raise UsageError(f"bad argument {arg!r}: use key=value ({self.valid_keys()})")
            if key in self.keys and self.keys[key].kind == "override":
                overrides.append(arg)
                given.append(key)
            elif key in self.keys and self.keys[key].kind == "texts":
                values.setdefault(key, []).append(self._value(self.keys[key], quote_path_overrides([arg], quoted)[0]))
            elif key in self.keys:
                values[key] = self._value(self.keys[key], quote_path_overrides([arg], quoted)[0])
                given.append(key)
            elif self.config_keys is not None and key.lstrip("+~").split(".")[0].split("/")[0] in self.config_keys:
                overrides.append(arg)
            elif self.config_keys is not None and key.startswith(("+", "~")):
                overrides.append(arg)  # adding or deleting a key on purpose: the config says whether it may
            else:
                raise UsageError(f"unknown key {key!r}; {self.valid_keys()}")
        missing = [k.spelling() for k in self.keys.values() if k.required and k.name not in {*values, *given}]
        if missing:
            raise UsageError(f"missing {' and '.join(missing)}")
        out = {k.name: k.default for k in self.keys.values() if k.kind != "override"} | values
        return out, overrides, list(deprecated.values())

    def valid_keys(self) -> str:
        """``keys: a, b, c`` (and the config keys, when the entry point takes config overrides), for messages."""
        text = f"keys: {', '.join(self.keys)}"
        if self.config_keys is not None:
            text += f"; config overrides: {', '.join(sorted(self.config_keys))}[.<key>]=<value>"
        return text

    def _legacy(self, arg: str, rest: list[str], values: dict, deprecated: dict) -> None:
        flag, eq, inline = arg.partition("=")
        entry = self.legacy.get(flag)
        if entry is None:
            raise UsageError(f"unknown option {flag!r}; {self.valid_keys()}")
        if entry.nargs == 0:
            if eq:
                raise UsageError(f"{flag} takes no value")
            raw: Any = True
        elif entry.nargs == "+":
            raw = [inline] if eq else []
            while rest and _is_number(rest[0]):
                raw.append(rest.pop(0))
            if not raw:
                raise UsageError(f"{flag} needs one or more numbers")
        else:
            if not eq and not rest:
                raise UsageError(f"{flag} needs a value")
            raw = inline if eq else rest.pop(0)
        name = entry.key(raw) if callable(entry.key) else entry.key
        if name not in self.keys:
            raise UsageError(f"{flag} {raw}: no key {name!r}; {self.valid_keys()}")
        key, typed = self.keys[name], entry.value(raw) if entry.value else raw
        if key.kind == "texts":
            values.setdefault(name, []).append(typed)
        else:
            values[name] = typed if key.kind in ("bool", *_QUOTED) else self._convert(key, typed, f"{flag} {raw}")
        deprecated[flag] = f"{flag} is deprecated, use {entry.use or key.spelling()}"

    def _value(self, key: Key, arg: str) -> Any:
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.errors import HydraException

        try:
            parsed = OverridesParser.create().parse_override(arg)
        except HydraException as e:
            raise UsageError(f"{arg}: {str(e).splitlines()[0]}") from None
        value = parsed.value()
        if parsed.is_sweep_override():
            if key.kind not in _LIST_OF or not hasattr(value, "list"):
                raise UsageError(f"{arg}: one value expected (a list is written [a,b])")
            value = list(value.list)  # by=model,dataset reads as by=[model,dataset]
        if key.kind in ("str", *_QUOTED) and not isinstance(value, str) and value is not None:
            value = arg.partition("=")[2]  # split=2012, checkpoint=1: the text as typed
        return self._convert(key, value, arg)

    def _convert(self, key: Key, value: Any, arg: str) -> Any:
        if value is None:
            return None
        if key.kind in _LIST_OF:
            items = value if isinstance(value, list) else [value]
            value = [self._convert(Key(key.name, "", _LIST_OF[key.kind]), v, arg) for v in items]
        elif key.kind == "bool":
            if not isinstance(value, bool):
                raise UsageError(f"{arg}: {key.name} is true or false")
        elif key.kind in _SCALAR:
            try:
                if isinstance(value, bool) or (key.kind == "int" and isinstance(value, float)):
                    raise ValueError
                value = _SCALAR[key.kind](value)
            except (TypeError, ValueError):
                raise UsageError(
                    f"{arg}: {key.name} takes {'an integer' if key.kind == 'int' else 'a number'}"
                ) from None
        elif not isinstance(value, str):
            value = str(value)
        bad = [v for v in (value if isinstance(value, list) else [value]) if key.choices and v not in key.choices]
        if bad:
            raise UsageError(f"{arg}: {key.name} is one of {', '.join(map(str, key.choices))}")
        return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
