// `files_in_directory` in JavaScript: the same op as plugins/files_in_directory (Rust). Lists the
// regular files directly in `path` (not recursively), sorted by file name, and emits one
// DynamicOutput per file: the value is the file's full guest path, the mapping key its cleaned name.

import {
  DynamicOutput,
  OpDefinition,
  OpError,
  clean,
  compareUtf8,
  configSchema,
  exportOp,
  joinPath,
  readDir,
} from '../../../guest-sdk/js/sandmap-op.js';

export const op = exportOp({
  definition: new OpDefinition('files_in_directory', {
    description: 'Emit one record per regular file directly in `path`, sorted by name',
    configSchema: configSchema(
      'FilesConfig',
      {
        path: {
          description: 'The directory to list, as the op sees it (a guest path inside a granted directory).',
          type: 'string',
          default: '/data',
        },
      },
      { description: 'Config of `files_in_directory`.' },
    ),
  }).dynamicOutput('result', "the file's full guest path, keyed by its cleaned file name"),

  run(ctx, config) {
    let entries;
    try {
      entries = readDir(config.path);
    } catch (e) {
      throw new OpError(`list ${config.path}: ${e.message}`);
    }
    // The entry's own type: a symlink is not a regular file, even if it points at one.
    const names = entries.filter((e) => e.type === 'regular-file').map((e) => e.name);
    names.sort(compareUtf8);
    for (const name of names) {
      ctx.emit(new DynamicOutput(joinPath(config.path, name), clean(name), 'result', { filename: name }));
    }
  },
});
