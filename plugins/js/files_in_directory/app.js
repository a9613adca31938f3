// `files_in_directory` in JavaScript: the same op as plugins/files_in_directory (Rust), and it must
// stay indistinguishable from it (tests/conformance.rs). Lists the regular files in `path` (only
// those directly in it, or with `recursive` those in every sub-folder too), optionally only the ones
// whose name matches `pattern`, and emits one DynamicOutput per file, sorted by the UTF-8 bytes of
// its path relative to `path`: the value is the file's full guest path, the mapping key its cleaned
// relative path. Symlinks are never followed; what is skipped is counted in one info line.

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
import { PatternError, compilePattern } from './pattern.js';

export const op = exportOp({
  definition: new OpDefinition('files_in_directory', {
    description:
      'Emit one record per regular file in `path` (with `recursive`, in its sub-folders too), sorted by relative path',
    // The Rust build's schema (schemars, from its config struct), key for key.
    configSchema: configSchema(
      'FilesConfig',
      {
        include_hidden: {
          description:
            'List entries whose name starts with `.` (true by default: every file); false also skips hidden folders.',
          type: 'boolean',
          default: true,
        },
        path: {
          description: 'The directory to list, as the op sees it (a guest path inside a granted directory).',
          type: 'string',
          default: '/data',
        },
        pattern: {
          description:
            'Only list files whose name matches this glob (`*`, `?`, `[a-z]`, `[!a-z]`, `{a,b}`; see the README).',
          type: ['string', 'null'],
          default: null,
        },
        recursive: {
          description:
            'Also list the files in sub-folders, at any depth (never through a symlink),' +
            ' keyed by cleaned relative path.',
          type: 'boolean',
          default: false,
        },
      },
      { description: 'Config of `files_in_directory`.' },
    ),
  }).dynamicOutput('result', "the file's full guest path, keyed by its cleaned path relative to `path`"),

  run(ctx, config) {
    const { path = '/data', pattern = null, recursive = false, include_hidden: includeHidden = true } = config;
    let matches = null;
    if (pattern !== null) {
      try {
        matches = compilePattern(pattern);
      } catch (e) {
        if (e instanceof PatternError) throw new OpError(`invalid pattern "${pattern}": ${e.message}`);
        throw e;
      }
    }
    const skipped = { hidden: 0, symlinks: 0, directories: 0, special: 0, notMatching: 0 };
    const files = [];
    // [guest path, relative path with a trailing "/"], breadth first, each folder's entries by
    // name: which folder is listed first (and so which error is met first) is Rust's order.
    const folders = [[path, '']];
    for (let next = 0; next < folders.length; next++) {
      const [folder, prefix] = folders[next];
      let entries;
      try {
        entries = readDir(folder);
      } catch (e) {
        throw new OpError(`list ${folder}: ${e.message}`);
      }
      entries.sort((a, b) => compareUtf8(a.name, b.name));
      for (const { name, type } of entries) {
        const full = joinPath(folder, name);
        // The entry's own type: a symlink is not followed, whatever it points at.
        if (!includeHidden && name.startsWith('.')) {
          skipped.hidden += 1;
        } else if (type === 'symbolic-link') {
          skipped.symlinks += 1;
        } else if (type === 'directory') {
          if (recursive) folders.push([full, `${prefix}${name}/`]);
          else skipped.directories += 1;
        } else if (type !== 'regular-file') {
          skipped.special += 1;
        } else if (matches !== null && !matches(name)) {
          skipped.notMatching += 1;
        } else {
          files.push({ relative: `${prefix}${name}`, full, name });
        }
      }
    }
    // Sorted by the UTF-8 bytes of the relative path, as Rust sorts strings.
    files.sort((a, b) => compareUtf8(a.relative, b.relative));
    const line = summary(skipped, pattern);
    if (line !== null) ctx.info(line);
    for (const { relative, full, name } of files) {
      // Two paths may clean to one key ("a-b.txt", "a_b.txt"): the host refuses the second.
      ctx.emit(new DynamicOutput(full, clean(relative), 'result', { filename: name }));
    }
  },
});

// The log line (`skipped 2 entries: 1 symlink, 1 not matching "*.csv"`), or null when nothing was
// skipped: the Rust build's text. Reasons in the order they are checked.
function summary(skipped, pattern) {
  const count = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  const parts = [];
  if (skipped.hidden) parts.push(`${skipped.hidden} hidden`);
  if (skipped.symlinks) parts.push(count(skipped.symlinks, 'symlink', 'symlinks'));
  if (skipped.directories) parts.push(count(skipped.directories, 'directory', 'directories'));
  if (skipped.special) parts.push(count(skipped.special, 'special file', 'special files'));
  if (skipped.notMatching) parts.push(`${skipped.notMatching} not matching "${pattern ?? ''}"`);
  const total = skipped.hidden + skipped.symlinks + skipped.directories + skipped.special + skipped.notMatching;
  return total === 0 ? null : `skipped ${count(total, 'entry', 'entries')}: ${parts.join(', ')}`;
}
