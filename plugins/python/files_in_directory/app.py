"""`files_in_directory` in Python: the same op as plugins/files_in_directory (Rust). Lists the
regular files directly in `path` (not recursively), sorted by file name, and emits one
DynamicOutput per file: the value is the file's full guest path, the mapping key its cleaned name."""

import os

import sandmap_op as sm


class FilesInDirectory(sm.Op):
    definition = sm.OpDefinition(
        "files_in_directory",
        description="Emit one record per regular file directly in `path`, sorted by name",
        config_schema=sm.config_schema(
            "FilesConfig",
            description="Config of `files_in_directory`.",
            properties={
                "path": {
                    "description": "The directory to list, as the op sees it (a guest path inside a granted directory).",
                    "type": "string",
                    "default": "/data",
                }
            },
        ),
    ).dynamic_output("result", description="the file's full guest path, keyed by its cleaned file name")

    def run(self, ctx, config):
        path = config["path"]
        try:
            with os.scandir(path) as entries:
                # The entry's own type: a symlink is not a regular file, even if it points at one.
                names = [e.name for e in entries if e.is_file(follow_symlinks=False)]
        except OSError as e:
            raise sm.OpError(f"list {path}: {sm.os_error_message(e)}") from None
        # Sorted by the UTF-8 bytes of the name, as Rust sorts strings.
        names.sort(key=lambda n: n.encode("utf-8", "surrogateescape"))
        for name in names:
            ctx.emit(sm.DynamicOutput(os.path.join(path, name), sm.clean(name), metadata={"filename": name}))


Op = sm.export(FilesInDirectory)
