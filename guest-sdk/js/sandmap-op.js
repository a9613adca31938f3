// Write sandmap ops in JavaScript (componentize-js), with the concepts of the Rust SDK.
//
// An op is an object with a `definition` (an OpDefinition) and a `run(ctx, config)` function,
// exported from the app module as `export const op = exportOp({...})` (componentize-js binds the
// exported interface `op` to the module export of that name). Config arrives as an object (the
// host has validated it against the op's JSON Schema and applied its defaults); inputs are read
// with `ctx.input(name)`; records are emitted with `ctx.emit(new DynamicOutput(...))` while the op
// runs; the value `run` returns becomes the plain output "result".
//
// Errors: throw an OpError and the step fails with its message. Any other exception also fails the
// step (not a trap) with `Name: message`, and its stack goes to the step's log at error level.
//
// Files: the JS engine has no `fs`, so this kit reads granted directories through the
// `wasi:filesystem` imports of the world `op-component-fs` (guest-sdk/js/wit), resolving paths
// against the grants exactly as wasi-libc does for Rust and Python ops, and reporting errors as
// Rust's io::Error does: `No such file or directory (os error 44)`.

import { Hasher } from 'sandmap:op/digest@0.1.0';
import { emitDynamic, emitOutput, log as hostLog } from 'sandmap:op/host@0.1.0';
import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';
import { filesystemErrorCode } from 'wasi:filesystem/types@0.2.12';

/** The schema of an op that takes no config: the Rust SDK's `NoConfig`, character for character. */
export const NO_CONFIG = Object.freeze({
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'NoConfig',
  description: "An op's config when it takes none: accepts only an empty table.",
  type: 'object',
  additionalProperties: false,
});

/**
 * A config schema shaped like the Rust SDK's (schemars): an object with these properties (each a
 * JSON Schema, with its `default`), unknown keys refused.
 */
export function configSchema(title, properties, { description, required } = {}) {
  const schema = { $schema: 'https://json-schema.org/draft/2020-12/schema', title };
  if (description !== undefined) schema.description = description;
  schema.type = 'object';
  schema.properties = properties;
  if (required && required.length) schema.required = [...required];
  schema.additionalProperties = false;
  return schema;
}

/** An op failure with a message. The host fails the step with it; it is not a crash. */
export class OpError extends Error {
  constructor(message) {
    super(String(message));
    this.name = 'OpError';
  }

  /** Prefix the message with what the op was doing: `read /data/a.txt: ...`. */
  context(what) {
    return new OpError(`${what}: ${this.message}`);
  }
}

/** A file system error, displayed as Rust's io::Error: `No such file or directory (os error 44)`. */
export class OsError extends Error {
  constructor(errno) {
    super(`${STRERROR[errno] ?? `Unknown error ${errno}`} (os error ${errno})`);
    this.name = 'OsError';
    this.errno = errno;
  }
}

/** Replace every character outside [A-Za-z0-9_] with `_` ("a-b.txt" -> "a_b_txt", "über.txt" -> "_ber_txt"). */
export function clean(name) {
  let out = '';
  for (const ch of name) out += /^[A-Za-z0-9_]$/.test(ch) ? ch : '_';
  return out;
}

/** Whether `key` matches ^[A-Za-z0-9_]+$ (the host also refuses reserved names). */
export function isValidMappingKey(key) {
  return /^[A-Za-z0-9_]+$/.test(key);
}

/** Compare two strings by their UTF-8 bytes (code points), as Rust and Python sort strings. */
export function compareUtf8(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** Metadata values of kinds a JS value does not imply. */
export const Metadata = Object.freeze({
  url: (value) => ({ [TAG]: 'url', value: String(value) }),
  path: (value) => ({ [TAG]: 'path', value: String(value) }),
  markdown: (value) => ({ [TAG]: 'markdown', value: String(value) }),
  json: (value) => ({ [TAG]: 'json', value }),
  float: (value) => ({ [TAG]: 'float', value: Number(value) }),
});
const TAG = Symbol('sandmap metadata kind');

function encode(value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new OpError(`cannot encode value: ${e.message}`);
  }
  if (text === undefined) throw new OpError(`cannot encode value: ${typeof value} is not JSON`);
  return text;
}

function metadataValue(value) {
  if (value !== null && typeof value === 'object' && value[TAG]) {
    const kind = value[TAG];
    if (kind === 'json') return { tag: 'json', val: encode(value.value) };
    return { tag: kind, val: value.value };
  }
  switch (typeof value) {
    case 'string':
      return { tag: 'text', val: value };
    case 'boolean':
      return { tag: 'boolean', val: value };
    case 'bigint':
      return { tag: 'int', val: value };
    case 'number':
      return Number.isSafeInteger(value) ? { tag: 'int', val: BigInt(value) } : { tag: 'float', val: value };
    default:
      return { tag: 'json', val: encode(value) };
  }
}

function lowerMetadata(metadata) {
  return Object.entries(metadata ?? {}).map(([key, value]) => ({ key, value: metadataValue(value) }));
}

/**
 * One record of a dynamic output: a downstream `map` clones a step for it, keyed op[mappingKey].
 * The key must match ^[A-Za-z0-9_]+$ (see clean) and be unique per output in this step; the host
 * checks both when the record is emitted.
 */
export class DynamicOutput {
  constructor(value, mappingKey, outputName = 'result', metadata = null) {
    this.value = value;
    this.mappingKey = mappingKey;
    this.outputName = outputName;
    this.metadata = metadata ?? {};
  }
}

/** The value of a plain output, emitted with ctx.output (a single "result" is what run returns). */
export class Output {
  constructor(outputName, value, metadata = null) {
    this.outputName = outputName;
    this.value = value;
    this.metadata = metadata ?? {};
  }
}

/**
 * An op's name, description, inputs, outputs and config schema. With no output declared, the op
 * has one plain, required output "result", as in Dagster.
 */
export class OpDefinition {
  constructor(name, { description = '', configSchema = NO_CONFIG } = {}) {
    this.name = name;
    this.description = description;
    this.configSchema = configSchema;
    this.inputs = [];
    this.declaredOutputs = [];
  }

  /** An input ({ required: false }: it may be left unconnected). */
  input(name, description = '', { required = true } = {}) {
    this.inputs.push({ name, description, required });
    return this;
  }

  /** A plain output. */
  output(name, description = '', { required = true } = {}) {
    this.declaredOutputs.push({ name, description, dynamic: false, required });
    return this;
  }

  /** A dynamic output (Dagster's DynamicOut()). */
  dynamicOutput(name, description = '', { required = true } = {}) {
    this.declaredOutputs.push({ name, description, dynamic: true, required });
    return this;
  }

  get outputs() {
    if (this.declaredOutputs.length === 0) return [{ name: 'result', description: '', dynamic: false, required: true }];
    return this.declaredOutputs.map((o) => ({ ...o }));
  }
}

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error']);

/** Write a line to the step's log; `level` is one of trace, debug, info, warn, error. */
export function log(level, message) {
  hostLog(LEVELS.has(level) ? level : 'info', String(message));
}

/** The running step, passed to run. */
export class Context {
  constructor(context, inputs) {
    this.stepKey = context.stepKey;
    this.mappingKey = context.mappingKey ?? null;
    this.attempt = context.attempt;
    this.collectFailures = context.collectFailures ?? [];
    this.inputs = inputs;
    this.emittedOutputs = [];
  }

  /** The value of a connected input; fails the step if it is not connected. */
  input(name) {
    if (!this.inputs.has(name)) throw new OpError(`input "${name}" is not connected`);
    return this.inputs.get(name);
  }

  /** The value of an optional input, or `fallback` when the job leaves it unconnected. */
  inputOpt(name, fallback = null) {
    return this.inputs.has(name) ? this.inputs.get(name) : fallback;
  }

  /**
   * Emit one record of a dynamic output. Throws OpError if the host refused it (invalid or
   * duplicate key, unknown output, a limit): the step has failed, let it propagate.
   */
  emit(record) {
    const value = encode(record.value);
    try {
      emitDynamic({
        value,
        mappingKey: record.mappingKey,
        outputName: record.outputName,
        metadata: lowerMetadata(record.metadata),
      });
    } catch (e) {
      throw new OpError(e?.payload?.message ?? String(e));
    }
  }

  /** Emit the value of a plain output. */
  output(output) {
    const value = encode(output.value);
    this.emittedOutputs.push(output.outputName);
    try {
      emitOutput({ value, outputName: output.outputName, metadata: lowerMetadata(output.metadata) });
    } catch (e) {
      throw new OpError(e?.payload?.message ?? String(e));
    }
  }

  log(level, message) {
    log(level, message);
  }

  info(message) {
    log('info', message);
  }

  warn(message) {
    log('warn', message);
  }
}

// ---- Files: wasi:filesystem, with wasi-libc's path resolution and errno values ----

// wasi:filesystem error-code -> wasi-libc errno (as wasi-libc translates them for Rust and Python).
const ERRNO = {
  access: 2,
  'would-block': 6,
  already: 7,
  'bad-descriptor': 8,
  busy: 10,
  deadlock: 16,
  quota: 19,
  exist: 20,
  'file-too-large': 22,
  'illegal-byte-sequence': 25,
  'in-progress': 26,
  interrupted: 27,
  invalid: 28,
  io: 29,
  'is-directory': 31,
  loop: 32,
  'too-many-links': 34,
  'message-size': 35,
  'name-too-long': 37,
  'no-device': 43,
  'no-entry': 44,
  'no-lock': 46,
  'insufficient-memory': 48,
  'insufficient-space': 51,
  'not-directory': 54,
  'not-empty': 55,
  'not-recoverable': 56,
  unsupported: 58,
  'no-tty': 59,
  'no-such-device': 60,
  overflow: 61,
  'not-permitted': 63,
  pipe: 64,
  'read-only': 69,
  'invalid-seek': 70,
  'text-file-busy': 74,
  'cross-device': 75,
};

// wasi-libc's strerror for those errno values.
const STRERROR = {
  2: 'Permission denied',
  6: 'Resource temporarily unavailable',
  7: 'Operation already in progress',
  8: 'Bad file descriptor',
  10: 'Resource busy',
  16: 'Resource deadlock would occur',
  19: 'Quota exceeded',
  20: 'File exists',
  22: 'File too large',
  25: 'Illegal byte sequence',
  26: 'Operation in progress',
  27: 'Interrupted system call',
  28: 'Invalid argument',
  29: 'I/O error',
  31: 'Is a directory',
  32: 'Symbolic link loop',
  34: 'Too many links',
  35: 'Message too large',
  37: 'Filename too long',
  43: 'No such device',
  44: 'No such file or directory',
  46: 'No locks available',
  48: 'Out of memory',
  51: 'No space left on device',
  54: 'Not a directory',
  55: 'Directory not empty',
  56: 'State not recoverable',
  58: 'Not supported',
  59: 'Not a tty',
  60: 'No such device or address',
  61: 'Value too large for data type',
  63: 'Operation not permitted',
  64: 'Broken pipe',
  69: 'Read-only file system',
  70: 'Invalid seek',
  74: 'Text file busy',
  75: 'Cross-device link',
  76: 'Capabilities insufficient',
};

function osError(e) {
  const code = typeof e === 'string' ? e : e?.payload;
  if (typeof code === 'string' && code in ERRNO) return new OsError(ERRNO[code]);
  if (e instanceof Error) return e;
  return new Error(String(e?.payload ?? e));
}

let preopens = null;

// wasi-libc's strip_prefixes: leading "/" and "./", and a lone ".".
function stripPrefixes(path) {
  for (;;) {
    if (path.startsWith('/')) path = path.slice(1);
    else if (path.startsWith('./')) path = path.slice(2);
    else if (path === '.') path = '';
    else return path;
  }
}

function prefixMatches(prefix, path) {
  if (!path.startsWith('/') && prefix.length === 0) return true;
  if (!path.startsWith(prefix)) return false;
  let i = prefix.length;
  while (i > 0 && prefix[i - 1] === '/') i--;
  return i >= path.length || path[i] === '/';
}

// The granted directory holding `path` and the path relative to it (wasi-libc's
// __wasilibc_find_relpath with the working directory "/"), or an OsError(ENOENT).
function resolve(path) {
  let abs = path;
  if (!abs.startsWith('/')) {
    if (abs === '' || abs === '.' || abs === './') abs = '/';
    else abs = '/' + (abs.startsWith('./') ? abs.slice(2) : abs);
  }
  abs = abs.replace(/^\/+/, '');
  if (preopens === null) {
    preopens = getDirectories().map(([descriptor, guest]) => ({ descriptor, prefix: stripPrefixes(guest) }));
  }
  let best = null;
  for (let i = preopens.length - 1; i >= 0; i--) {
    const { descriptor, prefix } = preopens[i];
    if ((best === null || prefix.length > best.prefix.length) && prefixMatches(prefix, abs)) {
      best = { descriptor, prefix };
    }
  }
  if (best === null) throw new OsError(44);
  let relative = abs.slice(best.prefix.length).replace(/^\/+/, '');
  if (relative === '') relative = '.';
  return [best.descriptor, relative];
}

function openAt(path, openFlags) {
  const [dir, relative] = resolve(path);
  try {
    return dir.openAt({ symlinkFollow: true }, relative, openFlags, { read: true });
  } catch (e) {
    throw osError(e);
  }
}

/**
 * The bytes of the file at `path`, at most `size` bytes at a time (each a `Uint8Array`): an op's
 * memory does not grow with the file. Throws an OsError.
 */
export function* readChunks(path, size = 1 << 18) {
  const file = openAt(path, {});
  let stream;
  try {
    stream = file.readViaStream(0n);
  } catch (e) {
    throw osError(e);
  }
  for (;;) {
    let chunk;
    try {
      chunk = stream.blockingRead(BigInt(size));
    } catch (e) {
      if (e?.payload?.tag === 'closed') return;
      if (e?.payload?.tag === 'last-operation-failed') {
        const code = filesystemErrorCode(e.payload.val);
        throw code === undefined ? new OsError(29) : osError(code);
      }
      throw osError(e);
    }
    yield chunk;
  }
}

/** The bytes of the file at `path` (open + read, as Rust's std::fs::read). Throws an OsError. */
export function readFile(path) {
  const chunks = [];
  let total = 0;
  for (const chunk of readChunks(path, 1 << 16)) {
    chunks.push(chunk);
    total += chunk.length;
  }
  const data = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    data.set(chunk, at);
    at += chunk.length;
  }
  return data;
}

/**
 * A streaming SHA-256 computed by the host (`sandmap:op/digest`), at native speed: the host's uses
 * the CPU's SHA extensions, which wasm code cannot reach. `update` with the content (`Uint8Array`s)
 * in any number of pieces, then `finish` for its lowercase hex digest.
 */
export class Sha256 {
  constructor() {
    this.hasher = new Hasher('sha256');
  }

  /** Add `data` (a Uint8Array). */
  update(data) {
    // wasmtime refuses a call that copies more than 128 MiB from the guest: larger data goes in
    // several calls.
    const max = 64 << 20;
    for (let at = 0; at < data.length; at += max) this.hasher.update(data.subarray(at, at + max));
  }

  /** The digest of everything added, as lowercase hex; the hasher starts over. */
  finish() {
    return this.hasher.finish();
  }
}

/**
 * The entries directly in the directory `path`: [{ name, type }], type as wasi:filesystem names it
 * ('regular-file', 'directory', 'symbolic-link', ...; a symlink's own type). Throws an OsError.
 */
export function readDir(path) {
  const dir = openAt(path, { directory: true });
  const entries = [];
  try {
    const stream = dir.readDirectory();
    for (;;) {
      const entry = stream.readDirectoryEntry();
      if (!entry) break;
      entries.push({ name: entry.name, type: entry.type });
    }
  } catch (e) {
    throw osError(e);
  }
  return entries;
}

/** Join a directory and a name as Rust's Path::join and Python's os.path.join do. */
export function joinPath(dir, name) {
  if (name.startsWith('/') || dir === '') return name;
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

// ---- Export ----

// console.* goes to the step's log (the engine is built without stdio).
globalThis.console = {
  log: (...args) => log('info', args.join(' ')),
  info: (...args) => log('info', args.join(' ')),
  debug: (...args) => log('debug', args.join(' ')),
  trace: (...args) => log('trace', args.join(' ')),
  warn: (...args) => log('warn', args.join(' ')),
  error: (...args) => log('error', args.join(' ')),
};

function failure(message) {
  // componentize-js returns `err(payload)` for a thrown object with a `payload`.
  return { payload: { message } };
}

function runOp(op, context, config, inputs) {
  let parsedConfig;
  try {
    parsedConfig = JSON.parse(config);
  } catch (e) {
    throw new OpError(`invalid config: ${e.message}`);
  }
  const values = new Map();
  for (const { name, value } of inputs) {
    try {
      values.set(name, JSON.parse(value));
    } catch (e) {
      throw new OpError(`input "${name}" is not JSON: ${e.message}`);
    }
  }
  const ctx = new Context(context, values);
  const returned = op.run(ctx, parsedConfig);
  // The return value is the plain output "result": emitted unless the op produced "result" itself,
  // or returned undefined/null for an optional "result" it chose not to produce (the Rust SDK's rule).
  const result = op.definition.outputs.find((o) => o.name === 'result' && !o.dynamic);
  const none = returned === undefined || returned === null;
  if (result) {
    if (none && (ctx.emittedOutputs.includes('result') || !result.required)) return;
    ctx.output(new Output('result', returned === undefined ? null : returned));
  } else if (!none) {
    throw new OpError('run returned a value, but the op has no plain output "result" to hold it');
  }
}

/** The object componentize-js exports for the interface `op`: `export const op = exportOp({...})`. */
export function exportOp(op) {
  if (!(op.definition instanceof OpDefinition)) throw new TypeError('op.definition must be an OpDefinition');
  return {
    definition() {
      const d = op.definition;
      return {
        name: d.name,
        description: d.description,
        configSchema: JSON.stringify(d.configSchema),
        inputs: d.inputs.map((i) => ({ ...i })),
        outputs: d.outputs,
      };
    },
    run(context, config, inputs) {
      try {
        runOp(op, context, config, inputs);
      } catch (e) {
        if (e instanceof OpError || e instanceof OsError) throw failure(e.message);
        log('error', `op raised ${e?.stack ? `${e}\n${e.stack}` : String(e)}`);
        throw failure(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
      }
    },
  };
}
