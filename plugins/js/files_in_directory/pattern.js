// The `pattern` config of files_in_directory: the glob subset of the Rust build
// (plugins/files_in_directory/src/pattern.rs), matched on the UTF-8 bytes of a file's name.
//
// Hand-written because the Rust build matches with the globset crate, which this guest does not
// have (nor any glob library that reads globs as globset does). `compilePattern` refuses exactly
// what pattern.rs refuses, with the same reasons, and the matcher agrees with globset on everything
// it accepts: keep the three builds in step.
//
// - `*` any run of bytes (also none, also a leading `.`); `**` is the same as `*`;
// - `?` exactly one byte (a non-ASCII character is 2 to 4 bytes);
// - `[abc]`, `[a-z]` one byte out of a set of ASCII characters; `[!abc]` or `[^abc]` one byte not
//   in it. A `]` first in the set and a `-` first or last are literal;
// - `{a,b}` either alternative (not nested, none empty);
// - `\` makes the next character literal; anything else is itself, case-sensitive.

// Patterns longer than this (in UTF-8 bytes) are refused: it bounds the matching work.
const MAX_LEN = 1024;

/** Why a pattern is refused (the text after `invalid pattern "...": `). */
export class PatternError extends Error {}

/** The UTF-8 bytes of a string (of code points, as Rust and Python encode it). */
export function utf8(text) {
  const bytes = [];
  for (const ch of text) {
    const c = ch.codePointAt(0);
    if (c < 0x80) bytes.push(c);
    else if (c < 0x800) bytes.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else if (c < 0x10000) bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    else bytes.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  return bytes;
}

const literal = (ch) => utf8(ch).map((byte) => ({ kind: 'byte', byte }));

/** The matcher for `pattern`: a function from a file name to boolean. Throws a PatternError. */
export function compilePattern(pattern) {
  const tokens = parse(pattern);
  return (name) => {
    const data = utf8(name);
    return advance(tokens, new Set([0]), data).has(data.length);
  };
}

function parse(pattern) {
  if (pattern === '') throw new PatternError('it is empty');
  if (utf8(pattern).length > MAX_LEN) throw new PatternError('it is longer than 1024 bytes');
  if (pattern.includes('/')) throw new PatternError('it is matched against a file name, which never contains "/"');
  // Code points, as Rust's chars and Python's str index them (a JS string is UTF-16).
  const chars = Array.from(pattern);
  const top = [];
  let group = null; // inside {...}: the alternatives so far, the last one being filled
  let current = top;
  let i = 0;
  while (i < chars.length) {
    const c = chars[i];
    i += 1;
    if (c === '[') {
      const [next, token] = parseClass(chars, i);
      i = next;
      current.push(token);
    } else if (c === '{') {
      if (group !== null) throw new PatternError('"{...}" groups cannot be nested');
      group = [[]];
      current = group[0];
    } else if (c === ',' && group !== null) {
      if (current.length === 0) throw new PatternError('a "{...}" group has an empty alternative');
      current = [];
      group.push(current);
    } else if (c === '}') {
      if (group === null) throw new PatternError('"}" has no "{" before it');
      if (current.length === 0) throw new PatternError('a "{...}" group has an empty alternative');
      top.push({ kind: 'group', alternatives: group });
      group = null;
      current = top;
    } else if (c === '\\') {
      if (i === chars.length) throw new PatternError('it ends with a lone "\\"');
      current.push(...literal(chars[i]));
      i += 1;
    } else if (c === '*') {
      current.push({ kind: 'star' });
    } else if (c === '?') {
      current.push({ kind: 'any' });
    } else {
      current.push(...literal(c));
    }
  }
  if (group !== null) throw new PatternError('a "{" is never closed with "}"');
  return top;
}

// The class that starts after the `[` at chars[i - 1]: [index after its `]`, token].
function parseClass(chars, i) {
  const negated = chars[i] === '!' || chars[i] === '^';
  if (negated) i += 1;
  const ranges = [];
  let first = true;
  for (;;) {
    if (i >= chars.length) throw new PatternError('a "[" is never closed with "]"');
    const c = chars[i];
    i += 1;
    if (c === ']' && !first) return [i, { kind: 'class', negated, ranges }];
    first = false;
    checkClassChar(c, chars[i]);
    let high = c.codePointAt(0);
    // `c-d` is a range unless the `-` is last (then it is literal).
    if (chars[i] === '-' && i + 1 < chars.length && chars[i + 1] !== ']') {
      const d = chars[i + 1];
      i += 2;
      checkClassChar(d, chars[i]);
      if (d.codePointAt(0) < c.codePointAt(0)) throw new PatternError('a "[...]" range ends before it starts');
      // globset would stretch the range to a second end (`[a-c-e]` is `[a-e]`): refused.
      if (chars[i] === '-' && i + 1 < chars.length && chars[i + 1] !== ']') {
        throw new PatternError('a "[...]" range is followed by "-" (put a literal "-" last)');
      }
      high = d.codePointAt(0);
    }
    ranges.push([c.codePointAt(0), high]);
  }
}

function checkClassChar(c, following) {
  // globset's classes match single bytes, so `[ü]` would match a part of `ü`.
  if (c.codePointAt(0) > 0x7f) throw new PatternError('a "[...]" class may hold only ASCII characters');
  if (c === '\\') throw new PatternError('a "[...]" class cannot hold "\\"');
  if (c === '[' && following === ':') throw new PatternError('POSIX classes such as "[:alpha:]" are not supported');
}

// The positions in `data` where `tokens` can end, starting from any of `positions`: a set
// simulation, so that no pattern takes more than (pattern length x name length) steps.
function advance(tokens, positions, data) {
  const n = data.length;
  for (const token of tokens) {
    if (positions.size === 0) break;
    const next = new Set();
    if (token.kind === 'star') {
      for (let p = Math.min(...positions); p <= n; p++) next.add(p);
    } else if (token.kind === 'group') {
      for (const alternative of token.alternatives) {
        for (const p of advance(alternative, positions, data)) next.add(p);
      }
    } else {
      for (const p of positions) {
        if (p < n && oneByte(token, data[p])) next.add(p + 1);
      }
    }
    positions = next;
  }
  return positions;
}

function oneByte(token, byte) {
  if (token.kind === 'any') return true;
  if (token.kind === 'byte') return token.byte === byte;
  return token.ranges.some(([low, high]) => low <= byte && byte <= high) !== token.negated;
}
