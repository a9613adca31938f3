// `process_file` in JavaScript: the same op as plugins/process_file (Rust). Reads the file at the
// input `path`, in chunks, and returns its size, line count (number of '\n' bytes) and SHA-256:
// the host's (native speed) unless `host_digest` is false, which computes it in the op.

import { OpDefinition, OpError, Sha256, configSchema, exportOp, readChunks } from '../../../guest-sdk/js/sandmap-op.js';
import { GuestSha256 } from './sha256.js';

export const op = exportOp({
  definition: new OpDefinition('process_file', {
    description: 'Read one file: its size in bytes, its number of lines and its SHA-256',
    // The Rust build's schema (schemars, from its config struct), key for key.
    configSchema: configSchema(
      'ProcessConfig',
      {
        host_digest: {
          description:
            "Compute the SHA-256 in the host, at native speed (sandmap:op/digest); false computes it in the op's own code.",
          type: 'boolean',
          default: true,
        },
      },
      { description: 'Config of `process_file`.' },
    ),
  })
    .input('path', "the file's guest path")
    .output('result', '{path, bytes, lines, sha256}'),

  run(ctx, config) {
    const path = ctx.input('path');
    const hasher = config.host_digest ? new Sha256() : new GuestSha256();
    let bytes = 0;
    let lines = 0;
    try {
      for (const chunk of readChunks(path)) {
        hasher.update(chunk);
        bytes += chunk.length;
        for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) lines++;
      }
    } catch (e) {
      throw new OpError(`read ${path}: ${e.message}`);
    }
    return { path, bytes, lines, sha256: hasher.finish() };
  },
});
