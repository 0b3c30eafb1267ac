"""A sender in its own process, for the crash tests to kill: `python delivery_child.py REGION WEEK`.

Settings come from the PUBLISHER_* environment like the CLI's; CHILD_CHUNK and CHILD_CONCURRENCY
set the engine's sizes so a test can bound what a crash may leave unknown.
"""

from __future__ import annotations

import os
import sys

from publisher.delivery.engine import EngineConfig
from publisher.pipeline.send import send_digests
from publisher.runtime import Runtime
from publisher.settings import load_settings


def main() -> None:
    region, week = sys.argv[1], sys.argv[2]
    config = EngineConfig(
        concurrency=int(os.environ.get("CHILD_CONCURRENCY", "2")),
        chunk_size=int(os.environ.get("CHILD_CHUNK", "10")),
    )
    rt = Runtime(load_settings())
    report = send_digests(rt, regions=[region], week=week, early=True, config=config)
    print(f"sent {report.run.sent} unknown {report.run.unknown}")


if __name__ == "__main__":
    main()
