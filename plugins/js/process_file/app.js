// `process_file` in JavaScript: the same op as plugins/process_file (Rust). Reads the file at the
// input `path` and returns its size, line count (number of '\n' bytes) and SHA-256.

import { OpDefinition, OpError, exportOp, readFile } from '../../../guest-sdk/js/sandmap-op.js';
import { sha256Hex } from './sha256.js';

export const op = exportOp({
  definition: new OpDefinition('process_file', {
    description: 'Read one file: its size in bytes, its number of lines and its SHA-256',
  })
    .input('path', "the file's guest path")
    .output('result', '{path, bytes, lines, sha256}'),

  run(ctx) {
    const path = ctx.input('path');
    let data;
    try {
      data = readFile(path);
    } catch (e) {
      throw new OpError(`read ${path}: ${e.message}`);
    }
    let lines = 0;
    for (const b of data) if (b === 10) lines++;
    return { path, bytes: data.length, lines, sha256: sha256Hex(data) };
  },
});
