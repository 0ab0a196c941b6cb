"""The pipeline builder, in Python.

The same schema, rules and error messages as the TypeScript module
``pipeline/mod.ts`` (see docs/pipeline-schema.md): a pipeline saved by one
language loads in the other, and both write byte-identical JSON and TOML for
the same definition, except for how floats are spelled (Python writes 2.0
and 1.5e-07 where JavaScript writes 2 and 1.5e-7; the values are equal).

Example::

    from remotemedia_multiprocess.pipeline import Pipeline

    p = (
        Pipeline("voice")
        .add_node("vad", "vad", {"threshold": 0.5})
        .add_node("whisper_like", "asr")
        .connect("vad", "out", "asr", "in")
        .add_input("audio", "vad", "in")
        .add_output("text", "asr", "out")
    )
    p.validate()
    print(p.to_toml())
"""

from __future__ import annotations

import copy
import datetime
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypedDict

from ._contracts import (
    PIPELINE_NAME_PATTERN,
    PIPELINE_NAME_RULE,
    PIPELINE_TOP_KEYS,
    PIPELINE_VERSION,
)

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = [
    "Channel",
    "ConfigValue",
    "InputChannel",
    "NodePorts",
    "NodeTypeInfo",
    "Pipeline",
    "PipelineValidationError",
    "PortRef",
]

ConfigValue: TypeAlias = "str | int | float | bool | list[ConfigValue] | dict[str, ConfigValue]"
"""A value allowed in a node's config: what both JSON and TOML can hold."""

PipelineErrorCode = Literal[
    "duplicate_id",
    "unknown_node",
    "unknown_node_type",
    "unknown_port",
    "cycle",
    "unreachable_node",
    "duplicate_name",
    "invalid_schema",
    "port_in_use",
    "duplicate_connection",
    "invalid_name",
    "unknown_env",
    "unknown_host",
    "remote_edge",
]


class PipelineValidationError(ValueError):
    """A pipeline definition is invalid (raised before any process is spawned).

    ``code`` names the broken rule, as in the TypeScript error of the same name;
    ``str(e)`` is ``"<code>: <details>"``.
    """

    def __init__(self, code: PipelineErrorCode, message: str, node_id: str | None = None) -> None:
        super().__init__(message)
        self.code: PipelineErrorCode = code
        self.node_id = node_id


class NodeTypeInfo(TypedDict):
    """The ports of a registered node type (as ``runner --list-types`` reports them)."""

    inputs: list[str]
    outputs: list[str]


class NodePorts(TypedDict):
    """The channels of one node, in the shape of the runner spec."""

    inputs: dict[str, list[str]]
    outputs: dict[str, str]


@dataclass(frozen=True)
class PortRef:
    """One port of one node."""

    node: str
    port: str


@dataclass
class Channel:
    """A node output port that something reads: one data channel."""

    name: str
    source: PortRef
    readers: list[PortRef] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    deno_reads: bool = False


@dataclass
class InputChannel:
    """The channel of one pipeline input (published by the Deno process)."""

    name: str
    input: str
    readers: list[PortRef] = field(default_factory=list)


_NAME_RE = re.compile(PIPELINE_NAME_PATTERN)
_NAME_RULE = PIPELINE_NAME_RULE
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_TOP_KEYS = PIPELINE_TOP_KEYS


def _fail(code: PipelineErrorCode, message: str) -> PipelineValidationError:
    return PipelineValidationError(code, message)


def _dumps(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False)


def _describe(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, (datetime.date, datetime.time)):
        return "a date"
    return f"a {type(v).__name__}"


def _at(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if _IDENT_RE.fullmatch(key) else f"{path}[{_dumps(key)}]"


def _prefix(path: str) -> str:
    return f"{path}: " if path else ""


def _check_name(kind: str, v: object, path: str) -> str:
    if not isinstance(v, str):
        raise _fail(
            "invalid_schema",
            f"{_prefix(path)}{kind} must be a string, got {_describe(v)}",
        )
    if not _NAME_RE.fullmatch(v):
        raise _fail(
            "invalid_name",
            f"{_prefix(path)}{_dumps(v)} is not a valid {kind}: {_NAME_RULE}",
        )
    if kind == "node id" and v == "in":
        raise _fail(
            "invalid_name",
            f'{_prefix(path)}"in" is reserved (pipeline input channels are named in.<input>)',
        )
    return v


def _check_object(
    v: object, path: str, keys: Sequence[str], required: Sequence[str]
) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _fail("invalid_schema", f"{path}: must be an object, got {_describe(v)}")
    for k in v:
        if k not in keys:
            raise _fail("invalid_schema", f"{_at(path, str(k))}: unknown key")
    for k in required:
        if k not in v:
            raise _fail("invalid_schema", f"{_at(path, k)}: missing")
    return v


_MISSING = object()

_RESTART_POLICIES = ("never", "on-failure", "always")
_NODE_KEYS = (
    "id",
    "type",
    "config",
    "env",
    "host",
    "restart",
    "process_timeout_secs",
    "ping_timeout_secs",
)


def _check_number(
    v: object, path: str, minimum: float, exclusive: bool = False, integer: bool = False
) -> float:
    ok = (
        isinstance(v, (int, float))
        and not isinstance(v, bool)
        and math.isfinite(v)
        and (v > minimum if exclusive else v >= minimum)
        and (not integer or float(v).is_integer())
    )
    if not ok:
        what = "an integer" if integer else "a number"
        bound = f"> {minimum:g}" if exclusive else f">= {minimum:g}"
        got = v if isinstance(v, (int, float)) and not isinstance(v, bool) else _describe(v)
        raise _fail("invalid_schema", f"{path}: must be {what} {bound}, got {got}")
    return v  # type: ignore[return-value]


def _check_supervision(no: Mapping[str, Any], p: str) -> dict[str, Any]:
    """The node's ``restart``, ``process_timeout_secs`` and ``ping_timeout_secs``, checked."""

    def key(k: str) -> str:
        return _at(p, k) if p else k

    out: dict[str, Any] = {}
    if no.get("restart") is not None:
        path = key("restart")
        r = _check_object(
            no["restart"],
            path,
            ("policy", "max_restarts", "window_secs", "backoff_ms"),
            ("policy",),
        )
        if r["policy"] not in _RESTART_POLICIES:
            got = _dumps(r["policy"]) if isinstance(r["policy"], str) else _describe(r["policy"])
            choices = ", ".join(f'"{x}"' for x in _RESTART_POLICIES)
            raise _fail(
                "invalid_schema", f"{_at(path, 'policy')}: must be one of {choices}, got {got}"
            )
        policy: dict[str, Any] = {"policy": r["policy"]}
        if r.get("max_restarts") is not None:
            policy["max_restarts"] = _check_number(
                r["max_restarts"], _at(path, "max_restarts"), 0, integer=True
            )
        if r.get("window_secs") is not None:
            policy["window_secs"] = _check_number(
                r["window_secs"], _at(path, "window_secs"), 0, exclusive=True
            )
        if r.get("backoff_ms") is not None:
            policy["backoff_ms"] = _check_number(r["backoff_ms"], _at(path, "backoff_ms"), 0)
        out["restart"] = policy
    if no.get("process_timeout_secs") is not None:
        out["process_timeout_secs"] = _check_number(
            no["process_timeout_secs"], key("process_timeout_secs"), 0, exclusive=True
        )
    if no.get("ping_timeout_secs") is not None:
        out["ping_timeout_secs"] = _check_number(
            no["ping_timeout_secs"], key("ping_timeout_secs"), 0
        )
    return out


def _check_array(v: object, path: str) -> list[Any]:
    if v is _MISSING:
        return []
    if not isinstance(v, list):
        raise _fail("invalid_schema", f"{path}: must be an array, got {_describe(v)}")
    return v


def _check_port_ref(v: object, path: str) -> dict[str, str]:
    o = _check_object(v, path, ("node", "port"), ("node", "port"))
    return {
        "node": _check_name("node id", o["node"], _at(path, "node")),
        "port": _check_name("port name", o["port"], _at(path, "port")),
    }


def _check_config_value(v: object, path: str) -> ConfigValue:
    if isinstance(v, (str, bool)):
        return v
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            raise _fail("invalid_schema", f"{path}: must be a finite number")
        return v
    if isinstance(v, list):
        return [_check_config_value(x, _at(path, i)) for i, x in enumerate(v)]
    if isinstance(v, dict):
        return _check_config(v, path)
    raise _fail(
        "invalid_schema",
        f"{path}: {_describe(v)} is not allowed "
        "(config values are strings, numbers, booleans, arrays and tables)",
    )


def _check_config(v: object, path: str) -> dict[str, ConfigValue]:
    if not isinstance(v, dict):
        raise _fail("invalid_schema", f"{path}: must be an object, got {_describe(v)}")
    out: dict[str, ConfigValue] = {}
    for k, x in v.items():
        if not isinstance(k, str):
            raise _fail("invalid_schema", f"{path}: key {k!r} must be a string")
        out[k] = _check_config_value(x, _at(path, k))
    return out


def _check_non_empty_string(v: object, path: str) -> str:
    if not isinstance(v, str):
        raise _fail("invalid_schema", f"{path}: must be a string, got {_describe(v)}")
    if not v:
        raise _fail("invalid_schema", f"{path}: must not be empty")
    return v


def _check_definition(raw: object) -> dict[str, Any]:
    """Checks the schema shape and returns a normalized deep copy."""
    o = _check_object(raw, "$", _TOP_KEYS, ("version",))
    version = o["version"]
    if (
        isinstance(version, bool)
        or not isinstance(version, (int, float))
        or version != PIPELINE_VERSION
    ):
        got = (
            str(version)
            if isinstance(version, (int, float)) and not isinstance(version, bool)
            else _describe(version)
        )
        raise _fail("invalid_schema", f"$.version: must be {PIPELINE_VERSION}, got {got}")
    d: dict[str, Any] = {"version": PIPELINE_VERSION}
    if "name" in o:
        if not isinstance(o["name"], str):
            raise _fail(
                "invalid_schema",
                f"$.name: must be a string, got {_describe(o['name'])}",
            )
        d["name"] = o["name"]
    for key in ("modules", "module_paths"):
        if key in o:
            v = o[key]
            if not isinstance(v, list) or any(not isinstance(x, str) or not x for x in v):
                raise _fail(
                    "invalid_schema",
                    f"$.{key}: must be an array of non-empty strings, got {_describe(v)}",
                )
            d[key] = list(v)
    d["nodes"] = []
    for i, n in enumerate(_check_array(o.get("nodes", _MISSING), "$.nodes")):
        p = _at("$.nodes", i)
        no = _check_object(n, p, _NODE_KEYS, ("id", "type"))
        node: dict[str, Any] = {
            "id": _check_name("node id", no["id"], _at(p, "id")),
            "type": _check_non_empty_string(no["type"], _at(p, "type")),
            "config": _check_config(no["config"], _at(p, "config")) if "config" in no else {},
        }
        if "env" in no:
            node["env"] = _check_name("environment name", no["env"], _at(p, "env"))
        if "host" in no:
            node["host"] = _check_name("host name", no["host"], _at(p, "host"))
        node.update(_check_supervision(no, p))
        d["nodes"].append(node)
    d["connections"] = []
    for i, c in enumerate(_check_array(o.get("connections", _MISSING), "$.connections")):
        p = _at("$.connections", i)
        co = _check_object(c, p, ("from", "to"), ("from", "to"))
        d["connections"].append(
            {
                "from": _check_port_ref(co["from"], _at(p, "from")),
                "to": _check_port_ref(co["to"], _at(p, "to")),
            }
        )
    d["inputs"] = []
    for i, x in enumerate(_check_array(o.get("inputs", _MISSING), "$.inputs")):
        p = _at("$.inputs", i)
        io = _check_object(x, p, ("name", "to"), ("name", "to"))
        name = _check_name("input name", io["name"], _at(p, "name"))
        to = _check_array(io["to"], _at(p, "to"))
        if not to:
            raise _fail("invalid_schema", f"{_at(p, 'to')}: must not be empty")
        d["inputs"].append(
            {
                "name": name,
                "to": [_check_port_ref(t, _at(_at(p, "to"), j)) for j, t in enumerate(to)],
            }
        )
    d["outputs"] = []
    for i, x in enumerate(_check_array(o.get("outputs", _MISSING), "$.outputs")):
        p = _at("$.outputs", i)
        oo = _check_object(x, p, ("name", "from"), ("name", "from"))
        d["outputs"].append(
            {
                "name": _check_name("output name", oo["name"], _at(p, "name")),
                "from": _check_port_ref(oo["from"], _at(p, "from")),
            }
        )
    return d


# ---- TOML writer: the same algorithm as pipeline/_toml_writer.ts.

_SHORT_ESCAPES = {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}


def _toml_string(s: str) -> str:
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif c in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[c])
        elif c < 0x20 or c == 0x7F:
            out.append(f"\\u{c:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_key(k: str) -> str:
    return k if _BARE_KEY_RE.fullmatch(k) else _toml_string(k)


def _toml_value(v: ConfigValue) -> str:
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)  # shortest round-trip form, always valid TOML for finite floats
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if not v:
        return "{}"
    return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"


def _toml_port_ref(r: Mapping[str, str]) -> str:
    return f"{{ node = {_toml_string(r['node'])}, port = {_toml_string(r['port'])} }}"


def _definition_to_toml(d: Mapping[str, Any]) -> str:
    lines = ["version = 1"]
    if "name" in d:
        lines.append(f"name = {_toml_string(d['name'])}")
    for n in d["nodes"]:
        lines += [
            "",
            "[[nodes]]",
            f"id = {_toml_string(n['id'])}",
            f"type = {_toml_string(n['type'])}",
        ]
        if "env" in n:
            lines.append(f"env = {_toml_string(n['env'])}")
        if "host" in n:
            lines.append(f"host = {_toml_string(n['host'])}")
        if "restart" in n:
            lines.append(f"restart = {_toml_value(n['restart'])}")
        for k in ("process_timeout_secs", "ping_timeout_secs"):
            if k in n:
                lines.append(f"{k} = {_toml_value(n[k])}")
        if n["config"]:
            lines += ["", "[nodes.config]"]
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in n["config"].items()]
    for c in d["connections"]:
        lines += [
            "",
            "[[connections]]",
            f"from = {_toml_port_ref(c['from'])}",
            f"to = {_toml_port_ref(c['to'])}",
        ]
    for i in d["inputs"]:
        targets = ", ".join(_toml_port_ref(t) for t in i["to"])
        lines += [
            "",
            "[[inputs]]",
            f"name = {_toml_string(i['name'])}",
            f"to = [{targets}]",
        ]
    for o in d["outputs"]:
        lines += [
            "",
            "[[outputs]]",
            f"name = {_toml_string(o['name'])}",
            f"from = {_toml_port_ref(o['from'])}",
        ]
    return "\n".join(lines) + "\n"


def _port_key(r: Mapping[str, str]) -> str:
    return f"{r['node']}.{r['port']}"


def _list_or_none(xs: Sequence[str]) -> str:
    return ", ".join(xs) if xs else "none"


def _extension_of(path: str | os.PathLike[str]) -> Literal["json", "toml"]:
    s = os.fspath(path)
    m = re.search(r"\.([A-Za-z]+)$", s)
    ext = m.group(1).lower() if m else ""
    if ext == "json":
        return "json"
    if ext == "toml":
        return "toml"
    raise ValueError(f'Cannot tell the pipeline format of "{s}": use a .json or .toml file')


class Pipeline:
    """A pipeline of Python nodes with named inputs and outputs.

    Builder methods check names at once (``invalid_name``); the graph rules are
    checked by :meth:`validate`. Every builder method returns ``self``.
    """

    def __init__(self, name: str | None = None) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError("The pipeline name must be a string")
        self._name = name
        self._nodes: list[dict[str, Any]] = []
        self._connections: list[dict[str, dict[str, str]]] = []
        self._inputs: list[dict[str, Any]] = []
        self._outputs: list[dict[str, Any]] = []

    @property
    def name(self) -> str | None:
        """The pipeline name, if any."""
        return self._name

    def add_node(
        self,
        node_type: str,
        node_id: str,
        config: Mapping[str, ConfigValue] | None = None,
        env: str | None = None,
        restart: Mapping[str, Any] | None = None,
        process_timeout_secs: float | None = None,
        ping_timeout_secs: float | None = None,
        host: str | None = None,
    ) -> Pipeline:
        """Adds a node of a registered type with a unique id and a config (deep-copied).

        ``env`` names the Python environment the node runs in
        (``[multiprocess.python.envs.<name>]`` of runtime.toml); None is the default one.
        ``host`` names the host the node runs on (``[multiprocess.hosts.<name>]`` of
        runtime.toml, or ``"local"``); None is this host.
        ``restart`` is the restart policy as in a pipeline file (``{"policy": "on-failure",
        "max_restarts": 3, "window_secs": 60, "backoff_ms": 100}``); the timeouts are the
        node's health bounds (docs/pipeline-schema.md, "Supervision").
        """
        node: dict[str, Any] = {
            "id": _check_name("node id", node_id, ""),
            "type": _check_non_empty_string(node_type, "node type"),
            "config": _check_config(dict(config) if config is not None else {}, "config"),
        }
        if env is not None:
            node["env"] = _check_name("environment name", env, "env")
        if host is not None:
            node["host"] = _check_name("host name", host, "host")
        node.update(
            _check_supervision(
                {
                    "restart": dict(restart) if restart is not None else None,
                    "process_timeout_secs": process_timeout_secs,
                    "ping_timeout_secs": ping_timeout_secs,
                },
                "",
            )
        )
        self._nodes.append(node)
        return self

    def connect(self, from_node: str, from_port: str, to_node: str, to_port: str) -> Pipeline:
        """Connects an output port to an input port (fan-out and fan-in allowed)."""
        self._connections.append(
            {
                "from": {
                    "node": _check_name("node id", from_node, ""),
                    "port": _check_name("port name", from_port, ""),
                },
                "to": {
                    "node": _check_name("node id", to_node, ""),
                    "port": _check_name("port name", to_port, ""),
                },
            }
        )
        return self

    def add_input(self, name: str, to_node: str, to_port: str) -> Pipeline:
        """Declares a pipeline input feeding a node input port.

        Calling it again with the same name adds another reader of that input.
        """
        _check_name("input name", name, "")
        ref = {
            "node": _check_name("node id", to_node, ""),
            "port": _check_name("port name", to_port, ""),
        }
        for i in self._inputs:
            if i["name"] == name:
                i["to"].append(ref)
                return self
        self._inputs.append({"name": name, "to": [ref]})
        return self

    def add_output(self, name: str, from_node: str, from_port: str) -> Pipeline:
        """Declares a pipeline output reading a node output port."""
        self._outputs.append(
            {
                "name": _check_name("output name", name, ""),
                "from": {
                    "node": _check_name("node id", from_node, ""),
                    "port": _check_name("port name", from_port, ""),
                },
            }
        )
        return self

    def validate(self, registry: Mapping[str, NodeTypeInfo] | None = None) -> None:
        """Checks the graph rules and raises the first broken one.

        Order: duplicate_id, duplicate_name, unknown_node, unknown_node_type and
        unknown_port (only with a registry), duplicate_connection, cycle,
        unreachable_node. With a registry, a node whose type has no input ports
        is a source and needs no pipeline input.
        """
        by_id: dict[str, dict[str, Any]] = {}
        for n in self._nodes:
            if n["id"] in by_id:
                raise PipelineValidationError(
                    "duplicate_id",
                    f'Node id "{n["id"]}" is used by more than one node',
                    n["id"],
                )
            by_id[n["id"]] = n
        for kind, items in (("input", self._inputs), ("output", self._outputs)):
            seen: set[str] = set()
            for x in items:
                if x["name"] in seen:
                    raise PipelineValidationError(
                        "duplicate_name",
                        f'Pipeline {kind} name "{x["name"]}" is declared more than once',
                    )
                seen.add(x["name"])

        refs: list[tuple[str, dict[str, str], Literal["input", "output"]]] = []
        for c in self._connections:
            label = f"Connection {_port_key(c['from'])} -> {_port_key(c['to'])}"
            refs.append((label, c["from"], "output"))
            refs.append((label, c["to"], "input"))
        for i in self._inputs:
            for t in i["to"]:
                refs.append((f'Pipeline input "{i["name"]}"', t, "input"))
        for o in self._outputs:
            refs.append((f'Pipeline output "{o["name"]}"', o["from"], "output"))
        for label, ref, _ in refs:
            if ref["node"] not in by_id:
                raise PipelineValidationError(
                    "unknown_node", f'{label}: no node "{ref["node"]}"', ref["node"]
                )

        if registry is not None:
            for n in self._nodes:
                if n["type"] not in registry:
                    known = _list_or_none(sorted(registry))
                    raise PipelineValidationError(
                        "unknown_node_type",
                        f'Node "{n["id"]}": type "{n["type"]}" is not in the registry '
                        f"(known types: {known})",
                        n["id"],
                    )
            for label, ref, direction in refs:
                node_type = by_id[ref["node"]]["type"]
                info = registry[node_type]
                ports = list(info["inputs"] if direction == "input" else info["outputs"])
                if ref["port"] not in ports:
                    raise PipelineValidationError(
                        "unknown_port",
                        f'{label}: node "{ref["node"]}" (type "{node_type}") has no {direction} '
                        f'port "{ref["port"]}" ({direction}s: {_list_or_none(ports)})',
                        ref["node"],
                    )

        seen_conn: set[str] = set()
        for c in self._connections:
            key = f"{_port_key(c['from'])} -> {_port_key(c['to'])}"
            if key in seen_conn:
                raise PipelineValidationError(
                    "duplicate_connection",
                    f"Connection {key} is declared more than once",
                    c["to"]["node"],
                )
            seen_conn.add(key)
        for i in self._inputs:
            seen_to: set[str] = set()
            for t in i["to"]:
                if _port_key(t) in seen_to:
                    raise PipelineValidationError(
                        "duplicate_connection",
                        f'Pipeline input "{i["name"]}" feeds {_port_key(t)} more than once',
                        t["node"],
                    )
                seen_to.add(_port_key(t))

        cycle = self._find_cycle()
        if cycle is not None:
            raise PipelineValidationError(
                "cycle", f"Nodes form a cycle: {' -> '.join(cycle)}", cycle[0]
            )

        unreachable = self._unreachable(registry)
        if unreachable:
            raise PipelineValidationError(
                "unreachable_node",
                f"No pipeline input reaches these nodes: {', '.join(unreachable)}",
                unreachable[0],
            )

    def _adjacency(self) -> dict[str, list[str]]:
        adj: dict[str, list[str]] = {}
        for n in self._nodes:
            adj.setdefault(n["id"], [])
        for c in self._connections:
            nxt = adj.get(c["from"]["node"])
            if nxt is not None and c["to"]["node"] in adj and c["to"]["node"] not in nxt:
                nxt.append(c["to"]["node"])
        return adj

    def _find_cycle(self) -> list[str] | None:
        adj = self._adjacency()
        state: dict[str, int] = {}  # 1: on the stack, 2: done
        stack: list[str] = []

        def visit(u: str) -> list[str] | None:
            state[u] = 1
            stack.append(u)
            for v in adj[u]:
                s = state.get(v)
                if s == 1:
                    return [*stack[stack.index(v) :], v]
                if s is None:
                    found = visit(v)
                    if found is not None:
                        return found
            stack.pop()
            state[u] = 2
            return None

        for node_id in adj:
            if node_id not in state:
                found = visit(node_id)
                if found is not None:
                    return found
        return None

    def _unreachable(self, registry: Mapping[str, NodeTypeInfo] | None) -> list[str]:
        adj = self._adjacency()
        seen: set[str] = set()
        queue: list[str] = []

        def reach(node_id: str) -> None:
            if node_id not in seen and node_id in adj:
                seen.add(node_id)
                queue.append(node_id)

        for i in self._inputs:
            for t in i["to"]:
                reach(t["node"])
        if registry is not None:
            for n in self._nodes:
                info = registry.get(n["type"])
                if info is not None and len(info["inputs"]) == 0:
                    reach(n["id"])
        while queue:
            for v in adj[queue.pop(0)]:
                reach(v)
        return [node_id for node_id in adj if node_id not in seen]

    def topological_order(self) -> list[str]:
        """Node ids, each after the nodes it reads from (ties in definition order)."""
        adj = self._adjacency()
        indeg = dict.fromkeys(adj, 0)
        for nxt in adj.values():
            for v in nxt:
                indeg[v] += 1
        order: list[str] = []
        done: set[str] = set()
        progress = True
        while progress:
            progress = False
            for node_id in adj:
                if node_id not in done and indeg[node_id] == 0:
                    done.add(node_id)
                    order.append(node_id)
                    for v in adj[node_id]:
                        indeg[v] -= 1
                    progress = True
                    break
        return order

    def channels(self) -> list[Channel]:
        """One channel per node output port that something reads, in order of first use."""
        by_key: dict[str, Channel] = {}

        def get(r: Mapping[str, str]) -> Channel:
            key = _port_key(r)
            if key not in by_key:
                by_key[key] = Channel(name=key, source=PortRef(r["node"], r["port"]))
            return by_key[key]

        for c in self._connections:
            get(c["from"]).readers.append(PortRef(c["to"]["node"], c["to"]["port"]))
        for o in self._outputs:
            ch = get(o["from"])
            ch.outputs.append(o["name"])
            ch.deno_reads = True
        return list(by_key.values())

    def input_channels(self) -> list[InputChannel]:
        """The channels of the pipeline inputs (``in.<name>``) with their readers."""
        return [
            InputChannel(
                name=f"in.{i['name']}",
                input=i["name"],
                readers=[PortRef(t["node"], t["port"]) for t in i["to"]],
            )
            for i in self._inputs
        ]

    def node_ports(self, node_id: str) -> NodePorts:
        """The channels a node reads (port -> channels) and writes (port -> channel)."""
        if not any(n["id"] == node_id for n in self._nodes):
            raise PipelineValidationError("unknown_node", f'No node "{node_id}"', node_id)
        inputs: dict[str, list[str]] = {}
        outputs: dict[str, str] = {}

        def add_in(port: str, channel: str) -> None:
            lst = inputs.setdefault(port, [])
            if channel not in lst:
                lst.append(channel)

        for i in self._inputs:
            for t in i["to"]:
                if t["node"] == node_id:
                    add_in(t["port"], f"in.{i['name']}")
        for c in self._connections:
            if c["to"]["node"] == node_id:
                add_in(c["to"]["port"], _port_key(c["from"]))
        for ch in self.channels():
            if ch.source.node == node_id:
                outputs[ch.source.port] = ch.name
        return {"inputs": inputs, "outputs": outputs}

    def to_dict(self) -> dict[str, Any]:
        """The serialized definition (a deep copy), schema version 1."""
        d: dict[str, Any] = {"version": PIPELINE_VERSION}
        if self._name is not None:
            d["name"] = self._name
        d["nodes"] = copy.deepcopy(self._nodes)
        d["connections"] = copy.deepcopy(self._connections)
        d["inputs"] = copy.deepcopy(self._inputs)
        d["outputs"] = copy.deepcopy(self._outputs)
        return d

    def to_json(self) -> str:
        """The definition as JSON text (2-space indent, final newline), as TS ``save`` writes it."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, obj: object) -> Pipeline:
        """Builds a pipeline from a definition; only the schema shape is checked."""
        d = _check_definition(obj)
        p = cls(d.get("name"))
        p._nodes = d["nodes"]
        p._connections = d["connections"]
        p._inputs = d["inputs"]
        p._outputs = d["outputs"]
        return p

    @classmethod
    def from_json(cls, text: str | bytes | Mapping[str, Any]) -> Pipeline:
        """Builds a pipeline from JSON text (or an already parsed definition)."""
        if isinstance(text, Mapping):
            return cls.from_dict(dict(text))
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise PipelineValidationError("invalid_schema", f"$: invalid JSON: {e}") from e
        return cls.from_dict(raw)

    def to_toml(self) -> str:
        """The definition as TOML (same schema and layout as the TS writer)."""
        return _definition_to_toml(self.to_dict())

    @classmethod
    def from_toml(cls, text: str) -> Pipeline:
        """Builds a pipeline from TOML text; only the schema shape is checked."""
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise PipelineValidationError("invalid_schema", f"$: invalid TOML: {e}") from e
        return cls.from_dict(raw)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Pipeline:
        """Loads a ``.json`` or ``.toml`` file (chosen by extension)."""
        ext = _extension_of(path)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return cls.from_json(text) if ext == "json" else cls.from_toml(text)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Saves as ``.json`` or ``.toml`` (chosen by extension)."""
        ext = _extension_of(path)
        text = self.to_json() if ext == "json" else self.to_toml()
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
