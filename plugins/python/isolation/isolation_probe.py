"""The isolation probe (twin of plugins/fixtures/isolation): `configure` stores the
`mark` setting; every `evaluate` counts itself, appends the principal's id to a list and
denies with the reason code `probe` and the message `mark=M count=N seen=ID,...`. A fresh
instance must always report `count=1` and only its own request's id."""

from arbiter_policy import Policy, Request, Verdict, attrs, deny, export, reason

_state = {"mark": "unset", "count": 0, "seen": []}


class Isolation(Policy):
    name = "isolation"
    version = "0.1.0"

    def configure(self, settings) -> None:
        _state["mark"] = settings.str("mark") or "unset"
        _state["count"] = 0
        _state["seen"] = []

    def evaluate(self, request: Request) -> Verdict:
        _state["count"] += 1
        _state["seen"].append(request.principal.id)
        seen = "".join(i + "," for i in _state["seen"])
        return deny(reason("probe", f"mark={_state['mark']} count={_state['count']} seen={seen}"))


Evaluator = export(Isolation)
