"""`process_file` in Python: the same op as plugins/process_file (Rust). Reads the file at the
input `path`, in chunks, and returns its size, line count (number of b"\\n") and SHA-256: the
host's (native speed) unless `host_digest` is false, which computes it with hashlib in the op."""

import hashlib

import sandmap_op as sm


class ProcessFile(sm.Op):
    definition = (
        sm.OpDefinition(
            "process_file",
            description="Read one file: its size in bytes, its number of lines and its SHA-256",
            # The Rust build's schema (schemars, from its config struct), key for key.
            config_schema=sm.config_schema(
                "ProcessConfig",
                description="Config of `process_file`.",
                properties={
                    "host_digest": {
                        "description": (
                            "Compute the SHA-256 in the host, at native speed (sandmap:op/digest);"
                            " false computes it in the op's own code."
                        ),
                        "type": "boolean",
                        "default": True,
                    },
                },
            ),
        )
        .input("path", "the file's guest path")
        .output("result", "{path, bytes, lines, sha256}")
    )

    def run(self, ctx, config):
        path = ctx.input("path")
        hasher = sm.Sha256() if config["host_digest"] else hashlib.sha256()
        size = lines = 0
        for chunk in sm.read_chunks(path):
            hasher.update(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
        sha256 = hasher.finish() if config["host_digest"] else hasher.hexdigest()
        return {"path": path, "bytes": size, "lines": lines, "sha256": sha256}


Op = sm.export(ProcessFile)
