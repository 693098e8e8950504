"""Write Arbiter policy plugins in Python.

Subclass `Policy`, then export it under the name componentize-py looks for, the
exported interface's class `Evaluator`::

    from arbiter_policy import Policy, Request, Verdict, Privilege, allow, deny, reason, export

    class ReadOnly(Policy):
        name = "read-only"
        version = "1.0.0"

        def evaluate(self, request: Request) -> Verdict:
            if request.action.privilege == Privilege.READ:
                return allow()
            return deny(reason("read-only", "only reads are allowed here"))

    Evaluator = export(ReadOnly)

Build it with `plugins/python/build.sh OUT.wasm my_policy.py`. The types (`Request`,
`Verdict`...) are the ones componentize-py generates from `wit/` (package
`arbiter:policy@0.1.0`), re-exported here: see `wit/types.wit` for their fields.

Every call may run on a fresh sandbox: keep no state between calls except what
`configure` derives from its settings.
"""

from __future__ import annotations

from typing import Iterable, List, Optional, Sequence, Type

from componentize_py_types import Err
from wit_world.imports import data as _data
from wit_world.imports import log as _log
from wit_world.imports.types import (
    Action,
    Attribute,
    Description,
    Effect,
    Intent,
    Obligation,
    Obligation_ApproversRequired,
    Obligation_MaxCredentialLifetime,
    Principal,
    PrincipalKind,
    Privilege,
    Reason,
    Request,
    Resource,
    Value,
    Value_Boolean,
    Value_Float,
    Value_Int,
    Value_Str,
    Value_Strings,
    Verdict,
)

LogLevel = _log.Level

__all__ = [
    "Action", "Attribute", "Attributes", "ConfigurationError", "Description", "Effect",
    "Intent", "LogLevel", "Obligation", "Policy", "Principal", "PrincipalKind",
    "Privilege", "Reason", "Request", "Resource", "Value", "Verdict", "abstain", "allow",
    "approvers_required", "attrs", "data", "deny", "export", "log",
    "max_credential_lifetime", "reason", "require_approval", "verdict",
]


# --- attributes ----------------------------------------------------------------------

class Attributes:
    """Look-ups by name in an attribute list (`principal.attributes`, `context`...).

    Each typed getter answers None when the attribute is missing or of another type.
    Decide explicitly what None means, so that bad input never helps a request:
    `risk = ctx.int("risk"); risk = 100 if risk is None else risk`. (Beware `or`:
    `ctx.int("risk") or 100` also turns a real 0 into 100.)
    """

    __slots__ = ("_values",)

    def __init__(self, attributes: Iterable[Attribute]) -> None:
        # Names are unique within one list; on a duplicate the first one wins, as in Rust.
        values: dict = {}
        for a in attributes:
            values.setdefault(a.name, a.value)
        self._values = values

    def get(self, name: str) -> Optional[Value]:
        """The raw value named `name`."""
        return self._values.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def str(self, name: str) -> Optional[str]:
        """A string attribute."""
        v = self._values.get(name)
        return v.value if isinstance(v, Value_Str) else None

    def int(self, name: str) -> Optional[int]:
        """An integer attribute (never a boolean or a float)."""
        v = self._values.get(name)
        return v.value if isinstance(v, Value_Int) else None

    def float(self, name: str) -> Optional[float]:
        """A float attribute (integers widen)."""
        v = self._values.get(name)
        if isinstance(v, Value_Float):
            return v.value
        if isinstance(v, Value_Int):
            return float(v.value)
        return None

    def bool(self, name: str) -> Optional[bool]:
        """A boolean attribute."""
        v = self._values.get(name)
        return v.value if isinstance(v, Value_Boolean) else None

    def strings(self, name: str) -> Optional[List[str]]:
        """A list-of-strings attribute."""
        v = self._values.get(name)
        return v.value if isinstance(v, Value_Strings) else None


def attrs(attributes: Iterable[Attribute]) -> Attributes:
    """`Attributes` over a list, e.g. `attrs(request.context).int("hour")`."""
    return Attributes(attributes)


# --- verdicts --------------------------------------------------------------------------

def reason(code: str, caller_message: str, admin_message: Optional[str] = None) -> Reason:
    """A reason. `code` is stable kebab-case; `caller_message` is shown to the caller (say
    what to do instead; never secrets); `admin_message` (default: the caller message) is
    for administrators only."""
    return Reason(code, caller_message, caller_message if admin_message is None else admin_message)


def max_credential_lifetime(seconds: int) -> Obligation:
    """Upper bound, in seconds, on any credential issued for this action."""
    return Obligation_MaxCredentialLifetime(seconds)


def approvers_required(count: int) -> Obligation:
    """Number of distinct human approvers required."""
    return Obligation_ApproversRequired(count)


def verdict(effect: Effect, reasons: Sequence[Reason] = (),
            obligations: Sequence[Obligation] = ()) -> Verdict:
    """A verdict with any effect, reasons and obligations."""
    return Verdict(effect, list(reasons), list(obligations))


def allow(*reasons: Reason, obligations: Sequence[Obligation] = ()) -> Verdict:
    """Allow, optionally saying why and with obligations."""
    return verdict(Effect.ALLOW, reasons, obligations)


def deny(*reasons: Reason) -> Verdict:
    """Deny, saying why."""
    return verdict(Effect.DENY, reasons)


def require_approval(*reasons: Reason, obligations: Sequence[Obligation] = ()) -> Verdict:
    """Hold for human approval, saying why."""
    return verdict(Effect.REQUIRE_APPROVAL, reasons, obligations)


def abstain() -> Verdict:
    """No opinion: the request is outside what this plugin covers."""
    return verdict(Effect.ABSTAIN)


# --- host imports ------------------------------------------------------------------

def log(level: LogLevel, message: str) -> None:
    """Writes a line into the host's log (capped per evaluation by the host)."""
    _log.log(level, message)


def data(name: str) -> Optional[bytes]:
    """A data file shipped with the policy set, or None when there is none."""
    return _data.read(name)


# --- the policy ----------------------------------------------------------------------

class ConfigurationError(Exception):
    """Raise from `Policy.configure` to refuse the load with this message."""


class Policy:
    """A policy plugin. Override `evaluate`; set `name` and `version` (or override
    `describe`); override `configure` to read settings."""

    name: str = "unnamed"
    version: str = "0.0.0"
    #: Action names (or `prefix:*` patterns) the plugin has rules for; empty means all.
    actions: Sequence[str] = ()

    def describe(self) -> Description:
        """Name, version and the actions the plugin covers."""
        return Description(self.name, self.version, list(self.actions))

    def configure(self, settings: Attributes) -> None:
        """Receives the plugin's settings from the policy-set manifest, flattened to
        dotted names. Raise `ConfigurationError` to refuse the load. Called once at load;
        every fresh instance starts from the state it left (the host snapshots it). Keep
        it deterministic."""

    def evaluate(self, request: Request) -> Verdict:
        """Decides one request."""
        raise NotImplementedError


def export(policy: Type[Policy]) -> type:
    """The class componentize-py instantiates for the `evaluator` export. Assign it to the
    module-level name `Evaluator`: `Evaluator = export(MyPolicy)`.

    The policy object is created once, when componentize-py runs the module at build
    time; `configure` runs once at load, and every fresh instance starts from the state
    it left (the host snapshots it) before `evaluate`. An exception
    escaping `evaluate` traps the instance: componentize-py writes the traceback to
    stderr, which the host keeps in its guest log, and the host fails the evaluation
    closed (reason `plugin-failure`, kind `trap`), like a panic in a Rust plugin."""
    instance = policy()

    class Evaluator:
        def describe(self) -> Description:
            return instance.describe()

        def configure(self, settings: List[Attribute]) -> None:
            try:
                instance.configure(Attributes(settings))
            except ConfigurationError as e:
                raise Err(str(e)) from None

        def evaluate(self, request: Request) -> Verdict:
            return instance.evaluate(request)

    return Evaluator
