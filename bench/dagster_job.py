"""Dagster's canonical dynamic-mapping job, for sandmap's benchmark (run by
`cargo bench -p sandmap --bench fanout -- --with-dagster`, in a venv with dagster==1.13.29).

Usage: python dagster_job.py DIR in_process|multiprocess
Prints one JSON line: {"seconds": wall time of the run, "files": N, "summary": {...}}.
"""

import hashlib
import json
import os
import sys
import tempfile
import time

from dagster import (
    Config,
    DagsterInstance,
    DynamicOut,
    DynamicOutput,
    execute_job,
    in_process_executor,
    job,
    multiprocess_executor,
    op,
    reconstructable,
)


class FilesConfig(Config):
    path: str


def clean(name: str) -> str:
    return "".join(c if (c.isascii() and c.isalnum()) or c == "_" else "_" for c in name)


@op(out=DynamicOut())
def files_in_directory(config: FilesConfig):
    for name in sorted(os.listdir(config.path)):
        path = os.path.join(config.path, name)
        # Regular files only, as sandmap lists them (Dagster's example also takes symlinks).
        if os.path.isfile(path) and not os.path.islink(path):
            yield DynamicOutput(path, mapping_key=clean(name))


@op
def process_file(path: str) -> dict:
    with open(path, "rb") as f:
        data = f.read()
    return {"path": path, "bytes": len(data), "lines": data.count(b"\n"), "sha256": hashlib.sha256(data).hexdigest()}


@op
def summarize_directory(results: list) -> dict:
    return {"files": len(results), "bytes": sum(r["bytes"] for r in results), "lines": sum(r["lines"] for r in results)}


@job(executor_def=in_process_executor)
def process_directory():
    summarize_directory(files_in_directory().map(process_file).collect())


@job(executor_def=multiprocess_executor)
def process_directory_multiprocess():
    summarize_directory(files_in_directory().map(process_file).collect())


def main() -> None:
    directory, executor = sys.argv[1], sys.argv[2]
    ops_config = {"files_in_directory": {"config": {"path": directory}}}
    start = time.perf_counter()
    if executor == "in_process":
        result = process_directory.execute_in_process(run_config={"ops": ops_config})
        summary = result.output_for_node("summarize_directory")
    else:
        with tempfile.TemporaryDirectory() as home:
            with DagsterInstance.local_temp(home) as instance:
                run_config = {"ops": ops_config, "execution": {"config": {"max_concurrent": 2}}}
                with execute_job(reconstructable(process_directory_multiprocess), instance=instance, run_config=run_config) as result:
                    summary = result.output_for_node("summarize_directory")
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "files": summary["files"], "summary": summary}))


if __name__ == "__main__":
    main()
