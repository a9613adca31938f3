"""`process_file` in Python: the same op as plugins/process_file (Rust). Reads the file at the
input `path` and returns its size, line count (number of b"\\n") and SHA-256."""

import hashlib

import sandmap_op as sm


class ProcessFile(sm.Op):
    definition = (
        sm.OpDefinition(
            "process_file", description="Read one file: its size in bytes, its number of lines and its SHA-256"
        )
        .input("path", "the file's guest path")
        .output("result", "{path, bytes, lines, sha256}")
    )

    def run(self, ctx, config):
        path = ctx.input("path")
        data = sm.read_file(path)
        return {"path": path, "bytes": len(data), "lines": data.count(b"\n"), "sha256": hashlib.sha256(data).hexdigest()}


Op = sm.export(ProcessFile)
