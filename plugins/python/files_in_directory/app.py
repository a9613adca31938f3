"""`files_in_directory` in Python: the same op as plugins/files_in_directory (Rust), and it must stay
indistinguishable from it (tests/conformance.rs). Lists the regular files in `path` (only those
directly in it, or with `recursive` those in every sub-folder too), optionally only the ones whose
name matches `pattern`, and emits one DynamicOutput per file, sorted by the UTF-8 bytes of its path
relative to `path`: the value is the file's full guest path, the mapping key its cleaned relative
path. Symlinks are never followed; what is skipped is counted in one info line."""

import os
from collections import deque

import pattern as name_pattern
import sandmap_op as sm


class FilesInDirectory(sm.Op):
    definition = sm.OpDefinition(
        "files_in_directory",
        description=(
            "Emit one record per regular file in `path` (with `recursive`, in its sub-folders too),"
            " sorted by relative path"
        ),
        # The Rust build's schema (schemars, from its config struct), key for key.
        config_schema=sm.config_schema(
            "FilesConfig",
            description="Config of `files_in_directory`.",
            properties={
                "include_hidden": {
                    "description": (
                        "List entries whose name starts with `.` (true by default: every file);"
                        " false also skips hidden folders."
                    ),
                    "type": "boolean",
                    "default": True,
                },
                "path": {
                    "description": "The directory to list, as the op sees it (a guest path inside a granted directory).",
                    "type": "string",
                    "default": "/data",
                },
                "pattern": {
                    "description": (
                        "Only list files whose name matches this glob (`*`, `?`, `[a-z]`, `[!a-z]`, `{a,b}`;"
                        " see the README)."
                    ),
                    "type": ["string", "null"],
                    "default": None,
                },
                "recursive": {
                    "description": (
                        "Also list the files in sub-folders, at any depth (never through a symlink),"
                        " keyed by cleaned relative path."
                    ),
                    "type": "boolean",
                    "default": False,
                },
            },
        ),
    ).dynamic_output(
        "result", description="the file's full guest path, keyed by its cleaned path relative to `path`"
    )

    def run(self, ctx, config):
        path = config.get("path", "/data")
        pattern = config.get("pattern")
        recursive = config.get("recursive", False)
        include_hidden = config.get("include_hidden", True)
        matches = None
        if pattern is not None:
            try:
                matches = name_pattern.compile(pattern)
            except name_pattern.PatternError as e:
                raise sm.OpError(f'invalid pattern "{pattern}": {e}') from None
        skipped = _Skipped()
        files = []  # (relative path, full guest path, name)
        # (guest path, relative path with a trailing "/"), breadth first, each folder's entries by
        # name: which folder is listed first (and so which error is met first) is Rust's order.
        folders = deque([(path, "")])
        while folders:
            folder, prefix = folders.popleft()
            try:
                with os.scandir(folder) as listing:
                    entries = list(listing)
            except OSError as e:
                raise sm.OpError(f"list {folder}: {sm.os_error_message(e)}") from None
            entries.sort(key=lambda e: _utf8(e.name))
            for entry in entries:
                name = entry.name
                full = os.path.join(folder, name)
                # The entry's own type: a symlink is not followed, whatever it points at.
                if not include_hidden and name.startswith("."):
                    skipped.hidden += 1
                elif entry.is_symlink():
                    skipped.symlinks += 1
                elif entry.is_dir(follow_symlinks=False):
                    if recursive:
                        folders.append((full, f"{prefix}{name}/"))
                    else:
                        skipped.directories += 1
                elif not entry.is_file(follow_symlinks=False):
                    skipped.special += 1
                elif matches is not None and not matches(name):
                    skipped.not_matching += 1
                else:
                    files.append((f"{prefix}{name}", full, name))
        # Sorted by the UTF-8 bytes of the relative path, as Rust sorts strings.
        files.sort(key=lambda f: _utf8(f[0]))
        line = skipped.summary(pattern)
        if line is not None:
            ctx.info(line)
        for relative, full, name in files:
            # Two paths may clean to one key ("a-b.txt", "a_b.txt"): the host refuses the second.
            ctx.emit(sm.DynamicOutput(full, sm.clean(relative), metadata={"filename": name}))


def _utf8(text):
    return text.encode("utf-8", "surrogateescape")


class _Skipped:
    """The entries left out, by the first reason that applies, in this order."""

    def __init__(self):
        self.hidden = 0
        self.symlinks = 0
        self.directories = 0  # folders, when not recursive
        self.special = 0  # sockets, fifos, devices: neither a regular file, a folder nor a symlink
        self.not_matching = 0

    def summary(self, pattern):
        """The log line (``skipped 2 entries: 1 symlink, 1 not matching "*.csv"``), or None when
        nothing was skipped: the Rust build's text."""

        def count(n, one, many):
            return f"{n} {one if n == 1 else many}"

        parts = []
        if self.hidden:
            parts.append(f"{self.hidden} hidden")
        if self.symlinks:
            parts.append(count(self.symlinks, "symlink", "symlinks"))
        if self.directories:
            parts.append(count(self.directories, "directory", "directories"))
        if self.special:
            parts.append(count(self.special, "special file", "special files"))
        if self.not_matching:
            parts.append(f'{self.not_matching} not matching "{pattern or ""}"')
        total = self.hidden + self.symlinks + self.directories + self.special + self.not_matching
        if total == 0:
            return None
        return f"skipped {count(total, 'entry', 'entries')}: {', '.join(parts)}"


Op = sm.export(FilesInDirectory)
