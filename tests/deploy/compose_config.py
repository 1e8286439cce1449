#!/usr/bin/env python3
"""Validates a compose file with Debian's docker-compose 1.29, as an operator's
`docker-compose -f FILE config` would (deploy/README.md, "Tests").

  python3 tests/deploy/compose_config.py FILE SERVICE...

Runs `docker-compose -f FILE config -q` (the file is valid) and
`docker-compose -f FILE config --services` (each SERVICE is defined). No
Docker daemon is needed. Exit 0 when both pass, 1 otherwise, 77 (CTest's
skip) when docker-compose is not installed (Debian package docker-compose,
scripts/install-deps.sh). Standard library only.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

SKIP = 77


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    path, wanted = argv[0], argv[1:]
    tool = shutil.which("docker-compose")
    if not tool:
        print("SKIP: docker-compose is not installed (Debian package docker-compose, scripts/install-deps.sh); "
              f"{path} was not validated")
        return SKIP
    # The project name is given as the README does; COMPOSE_* from the caller's
    # environment must not change what is validated.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    base = [tool, "--ansi", "never", "-p", "loanledger-test", "-f", path]
    version = subprocess.run([tool, "version", "--short"], capture_output=True, text=True, env=env)
    check = subprocess.run(base + ["config", "-q"], capture_output=True, text=True, env=env)
    if check.returncode != 0:
        print(f"FAIL: docker-compose {version.stdout.strip()} rejects {path}:\n{check.stdout}{check.stderr}",
              file=sys.stderr)
        return 1
    listed = subprocess.run(base + ["config", "--services"], capture_output=True, text=True, env=env)
    services = set(listed.stdout.split())
    missing = [s for s in wanted if s not in services]
    if listed.returncode != 0 or missing:
        print(f"FAIL: {path}: services {sorted(services)} lack {missing}\n{listed.stderr}", file=sys.stderr)
        return 1
    print(f"OK: docker-compose {version.stdout.strip()} accepts {path}; services {sorted(services)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
