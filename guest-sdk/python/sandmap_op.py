"""Write sandmap ops in Python (componentize-py), with the concepts of the Rust SDK.

An op is a subclass of :class:`Op` with a ``definition`` and a ``run(ctx, config)`` method,
exported from the app module as ``Op = export(MyOp)`` (componentize-py looks for a class named
after the exported interface, ``op``). Config arrives as a dict (the host has validated it against
the op's JSON Schema and applied its defaults); inputs are read with :meth:`Context.input`; records
are emitted with :meth:`Context.emit` while the op runs; the value ``run`` returns becomes the plain
output ``"result"``.

Errors: raise :class:`OpError` (or let an :class:`OSError` escape; it reads like Rust's
``io::Error``) and the step fails with its message. Any other exception also fails the step (not a
trap) with ``TypeName: message``, and its traceback goes to the step's log at error level.
"""

import json
import os
import sys
import traceback

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import digest, host, types

__all__ = [
    "Context",
    "DynamicOutput",
    "Json",
    "Markdown",
    "NO_CONFIG",
    "Op",
    "OpDefinition",
    "OpError",
    "Output",
    "PathValue",
    "Sha256",
    "Url",
    "clean",
    "config_schema",
    "export",
    "is_valid_mapping_key",
    "os_error_message",
    "read_chunks",
    "read_file",
]

# The schema of an op that takes no config: the Rust SDK's `NoConfig`, character for character.
NO_CONFIG = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "NoConfig",
    "description": "An op's config when it takes none: accepts only an empty table.",
    "type": "object",
    "additionalProperties": False,
}


def config_schema(title, properties, description=None, required=None):
    """A config schema shaped like the Rust SDK's (schemars): an object with these properties
    (each a JSON Schema, with its ``default``), unknown keys refused."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title}
    if description is not None:
        schema["description"] = description
    schema["type"] = "object"
    schema["properties"] = properties
    if required:
        schema["required"] = list(required)
    schema["additionalProperties"] = False
    return schema


class OpError(Exception):
    """An op failure with a message. The host fails the step with it; it is not a crash."""

    def __init__(self, message):
        super().__init__(message)
        self.message = str(message)

    def context(self, what):
        """Prefix the message with what the op was doing: ``read /data/a.txt: ...``."""
        return OpError(f"{what}: {self.message}")

    def __str__(self):
        return self.message


def os_error_message(error):
    """An OSError's text as Rust's ``io::Error`` displays it: ``No such file or directory (os error 44)``."""
    if isinstance(error, OSError) and error.errno is not None:
        return f"{error.strerror or os.strerror(error.errno)} (os error {error.errno})"
    return str(error)


def read_chunks(path, size=1 << 18):
    """The bytes of the file at ``path``, ``size`` bytes at a time (the last piece may be shorter):
    an op's memory does not grow with the file. Raises ``OpError("read PATH: <os error>")``."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise OpError(f"read {path}: {os_error_message(e)}") from None
    try:
        while True:
            try:
                chunk = os.read(fd, size)
            except OSError as e:
                raise OpError(f"read {path}: {os_error_message(e)}") from None
            if not chunk:
                return
            yield chunk
    finally:
        os.close(fd)


def read_file(path):
    """The bytes of the file at ``path`` (open + read, as Rust's ``std::fs::read``). Raises
    ``OpError("read PATH: <os error>")``."""
    return b"".join(read_chunks(path, 1 << 16))


class Sha256:
    """A streaming SHA-256 computed by the host (``sandmap:op/digest``), at native speed: the
    host's uses the CPU's SHA extensions, which wasm code (hashlib here included) cannot reach.
    ``update`` with the content in any number of pieces, then ``finish`` for its lowercase hex
    digest; the same digest as ``hashlib.sha256(data).hexdigest()``."""

    def __init__(self, data=None):
        self._hasher = digest.Hasher(digest.Algorithm.SHA256)
        if data is not None:
            self.update(data)

    # wasmtime refuses a call that copies more than 128 MiB from the guest: larger data goes in
    # several calls.
    _MAX_PER_CALL = 64 << 20

    def update(self, data):
        """Add ``data`` (bytes)."""
        data = memoryview(data).cast("B")
        for at in range(0, len(data), self._MAX_PER_CALL):
            self._hasher.update(bytes(data[at : at + self._MAX_PER_CALL]))

    def finish(self):
        """The digest of everything added, as lowercase hex; the hasher starts over."""
        return self._hasher.finish()


def clean(name):
    """Replace every character outside ``[A-Za-z0-9_]`` with ``_``, so that any file name becomes a
    valid mapping key (``"a-b.txt"`` -> ``"a_b_txt"``, ``"über.txt"`` -> ``"_ber_txt"``)."""
    return "".join(c if (c.isascii() and c.isalnum()) or c == "_" else "_" for c in name)


def is_valid_mapping_key(key):
    """Whether ``key`` matches ``^[A-Za-z0-9_]+$`` (the host also refuses reserved names)."""
    return bool(key) and all((c.isascii() and c.isalnum()) or c == "_" for c in key)


class _Tagged:
    """A metadata value of an explicit kind (for kinds a Python value does not imply)."""

    kind = None

    def __init__(self, value):
        self.value = value


class Url(_Tagged):
    """Metadata: a URL."""

    kind = "url"


class PathValue(_Tagged):
    """Metadata: a file system path."""

    kind = "path"


class Markdown(_Tagged):
    """Metadata: Markdown text."""

    kind = "markdown"


class Json(_Tagged):
    """Metadata: any JSON value (lists and dicts are JSON without this)."""

    kind = "json"


def _encode(value):
    return json.dumps(value, allow_nan=False, ensure_ascii=False)


def _metadata_value(value):
    if isinstance(value, _Tagged):
        if value.kind == "url":
            return types.MetadataValue_Url(str(value.value))
        if value.kind == "path":
            return types.MetadataValue_Path(str(value.value))
        if value.kind == "markdown":
            return types.MetadataValue_Markdown(str(value.value))
        return types.MetadataValue_Json(_encode(value.value))
    if isinstance(value, bool):
        return types.MetadataValue_Boolean(value)
    if isinstance(value, int):
        return types.MetadataValue_Int(value)
    if isinstance(value, float):
        return types.MetadataValue_Float(value)
    if isinstance(value, str):
        return types.MetadataValue_Text(value)
    return types.MetadataValue_Json(_encode(value))


def _lower_metadata(metadata):
    return [types.MetadataEntry(str(k), _metadata_value(v)) for k, v in (metadata or {}).items()]


class DynamicOutput:
    """One record of a dynamic output: a downstream ``map`` clones a step for it, keyed
    ``op[mapping_key]``. The key must match ``^[A-Za-z0-9_]+$`` (see :func:`clean`) and be unique
    per output in this step; the host checks both when the record is emitted."""

    def __init__(self, value, mapping_key, output_name="result", metadata=None):
        self.value = value
        self.mapping_key = mapping_key
        self.output_name = output_name
        self.metadata = dict(metadata or {})


class Output:
    """The value of a plain output, emitted with :meth:`Context.output` (for ops with several plain
    outputs; a single ``"result"`` is simply what ``run`` returns)."""

    def __init__(self, output_name, value, metadata=None):
        self.output_name = output_name
        self.value = value
        self.metadata = dict(metadata or {})


class OpDefinition:
    """An op's name, description, inputs and outputs, and its config schema. With no output
    declared, the op has one plain, required output ``"result"``, as in Dagster."""

    def __init__(self, name, description="", config_schema=None):
        self.name = name
        self.description = description
        self.config_schema = NO_CONFIG if config_schema is None else config_schema
        self.inputs = []
        self._outputs = []

    def input(self, name, description="", required=True):
        """An input (``required=False``: it may be left unconnected)."""
        self.inputs.append(types.InputDefinition(name, description, required))
        return self

    def output(self, name, description="", required=True):
        """A plain output."""
        self._outputs.append(types.OutputDefinition(name, description, False, required))
        return self

    def dynamic_output(self, name, description="", required=True):
        """A dynamic output (Dagster's ``DynamicOut()``)."""
        self._outputs.append(types.OutputDefinition(name, description, True, required))
        return self

    @property
    def outputs(self):
        if not self._outputs:
            return [types.OutputDefinition("result", "", False, True)]
        return list(self._outputs)


class Context:
    """The running step, passed to ``run``."""

    def __init__(self, context, inputs):
        self.step_key = context.step_key
        self.mapping_key = context.mapping_key
        self.attempt = context.attempt
        self.collect_failures = list(context.collect_failures)
        self._inputs = inputs
        self._emitted_outputs = []

    def input(self, name):
        """The value of a connected input; fails the step if it is not connected."""
        if name not in self._inputs:
            raise OpError(f'input "{name}" is not connected')
        return self._inputs[name]

    def input_opt(self, name, default=None):
        """The value of an optional input, or ``default`` when the job leaves it unconnected."""
        return self._inputs.get(name, default)

    def emit(self, record):
        """Emit one record of a dynamic output. Raises OpError if the host refused it (invalid or
        duplicate key, unknown output, a limit): the step has failed, let it propagate."""
        try:
            value = _encode(record.value)
        except (TypeError, ValueError) as e:
            raise OpError(f"cannot encode value: {e}") from None
        try:
            host.emit_dynamic(
                types.DynamicOutput(value, record.mapping_key, record.output_name, _lower_metadata(record.metadata))
            )
        except Err as e:
            raise OpError(e.value.message) from None

    def output(self, output):
        """Emit the value of a plain output."""
        try:
            value = _encode(output.value)
        except (TypeError, ValueError) as e:
            raise OpError(f"cannot encode value: {e}") from None
        self._emitted_outputs.append(output.output_name)
        try:
            host.emit_output(types.Output(value, output.output_name, _lower_metadata(output.metadata)))
        except Err as e:
            raise OpError(e.value.message) from None

    def log(self, level, message):
        """Write a line to the step's log; ``level`` is one of trace, debug, info, warn, error."""
        host.log(_LEVELS[level], str(message))

    def info(self, message):
        self.log("info", message)

    def warn(self, message):
        self.log("warn", message)


_LEVELS = {
    "trace": types.LogLevel.TRACE,
    "debug": types.LogLevel.DEBUG,
    "info": types.LogLevel.INFO,
    "warn": types.LogLevel.WARN,
    "error": types.LogLevel.ERROR,
}


class Op:
    """Base class of an op: set ``definition`` (an :class:`OpDefinition`) and implement
    ``run(self, ctx, config)``."""

    definition = None

    def run(self, ctx, config):
        raise NotImplementedError


def _run(op, context, config, inputs):
    try:
        config = json.loads(config)
    except ValueError as e:
        raise OpError(f"invalid config: {e}") from None
    values = {}
    for nv in inputs:
        try:
            values[nv.name] = json.loads(nv.value)
        except ValueError as e:
            raise OpError(f'input "{nv.name}" is not JSON: {e}') from None
    ctx = Context(context, values)
    returned = op.run(ctx, config)
    # The return value is the plain output "result": emitted unless the op produced "result" itself,
    # or returned None for an optional "result" it chose not to produce (the Rust SDK's rule).
    result = next((o for o in op.definition.outputs if o.name == "result" and not o.dynamic), None)
    already = "result" in ctx._emitted_outputs
    if result is not None:
        if returned is None and (already or not result.required):
            return
        ctx.output(Output("result", returned))
    elif returned is not None:
        raise OpError('run returned a value, but the op has no plain output "result" to hold it')


def export(op_class):
    """The class componentize-py exports for the interface ``op``: ``Op = export(MyOp)``."""
    op = op_class()
    definition = op.definition
    if not isinstance(definition, OpDefinition):
        raise TypeError(f"{op_class.__name__}.definition must be an OpDefinition")

    class _Exported(exports.Op):
        def definition(self):
            return types.OpDefinition(
                definition.name,
                definition.description,
                json.dumps(definition.config_schema),
                list(definition.inputs),
                definition.outputs,
            )

        def run(self, context, config, inputs):
            try:
                _run(op, context, config, inputs)
            except OpError as e:
                raise Err(types.OpError(e.message)) from None
            except OSError as e:
                raise Err(types.OpError(os_error_message(e))) from None
            except Exception as e:  # noqa: BLE001 - every other failure is an op failure, not a trap
                host.log(types.LogLevel.ERROR, "op raised " + "".join(traceback.format_exception(e)).rstrip())
                raise Err(types.OpError(f"{type(e).__name__}: {e}")) from None
            finally:
                # The instance never exits: flush what print() buffered, as the Rust SDK does.
                for stream in (sys.stdout, sys.stderr):
                    try:
                        stream.flush()
                    except Exception:  # noqa: BLE001
                        pass

    _Exported.__name__ = "Op"
    return _Exported
