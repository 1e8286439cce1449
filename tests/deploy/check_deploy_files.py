#!/usr/bin/env python3
"""Lints the deployment files in deploy/ that no tool here can run.

  python3 tests/deploy/check_deploy_files.py [--deploy DIR]
  python3 tests/deploy/check_deploy_files.py --systemd-verify   # exit 77 if systemd-analyze is absent

Checks (each failure is one line; exit status 1 if any):
- prometheus-compose.yml equals prometheus.yml but for the loanledger target;
- alerts.yml: every alert has expr, for, a severity label (critical|warning),
  summary and description annotations, a unique name, and alerts_test.yml has
  a case where it fires; a runbook_url annotation deploy/README.md#ANCHOR
  whose anchor is a heading of deploy/README.md (GitHub's anchor rules);
- docker-compose.yml: the three services, every ./path it mounts exists
  (./secrets/ excepted: the operator creates them; .gitignore must hide it),
  and the dashboards land where the Grafana provider reads them;
- Dockerfile: debian:bookworm stages, scripts/build.sh, both binaries,
  non-root USER, VOLUME, EXPOSE 7700 9464, build packages in step with
  scripts/install-deps.sh;
- images (every Dockerfile* and docker-compose.yml under deploy/): no
  `# syntax=` line (it fetches a frontend from outside), every FROM and every
  compose image from outside pinned by @sha256 digest (images the compose
  file builds itself are named loanledger/...), no top-level `name:` in a
  compose file (Debian's docker-compose 1.29 rejects it);
- systemd/loanledgerd.service: the hardening and lifecycle directives; the
  flags it needs, in ExecStart or the --config file (systemd/<its name>);
- the Grafana datasource uid is the dashboards' default;
- README.md names every file in deploy/ and every metric of metrics.txt.
With --systemd-verify, runs `systemd-analyze verify` on the unit (its
ExecStart binary swapped for /bin/sleep, as loanledgerd is not installed).
Standard library only.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SKIP = 77  # CTest SKIP_RETURN_CODE

UNIT_REQUIRED = {
    # directive: regex its value must match (last occurrence wins, as in systemd)
    "Type": r"simple|exec|notify",
    "User": r"(?!root$)\w+",
    "NoNewPrivileges": r"yes|true",
    "ProtectSystem": r"strict",
    "ReadWritePaths": r".*\S",
    "PrivateTmp": r"yes|true",
    "ProtectHome": r"yes|true|read-only|tmpfs",
    "CapabilityBoundingSet": r"",
    "RestrictAddressFamilies": r"AF_INET AF_INET6( AF_UNIX)?",
    "MemoryDenyWriteExecute": r"yes|true",
    "SystemCallFilter": r".*",  # checked below: @system-service among the values
    "LimitNOFILE": r"\d+",
    "Restart": r"on-failure",
    "KillSignal": r"SIGTERM",
    "TimeoutStopSec": r"\d+s?",
    "ExecStart": r"/usr/local/bin/loanledgerd .*",
}


def strip_comments(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = re.sub(r"\s+#.*$", "", line) if not line.lstrip().startswith("#") else ""
        if line.strip():
            out.append(line.rstrip())
    return out


def check_prometheus(deploy: Path, errors: list[str]) -> None:
    host = strip_comments((deploy / "prometheus/prometheus.yml").read_text())
    compose = strip_comments((deploy / "prometheus/prometheus-compose.yml").read_text())
    if not any('"127.0.0.1:9464"' in l for l in host):
        errors.append("prometheus.yml: does not scrape 127.0.0.1:9464")
    if not any('"loanledgerd:9464"' in l for l in compose):
        errors.append("prometheus-compose.yml: does not scrape loanledgerd:9464")
    normalized = [l.replace('"loanledgerd:9464"', '"127.0.0.1:9464"') for l in compose]
    if normalized != host:
        diff = [f"  {a!r} vs {b!r}" for a, b in zip(host, normalized) if a != b][:5]
        errors.append("prometheus-compose.yml differs from prometheus.yml beyond the loanledger target:\n"
                      + "\n".join(diff or [f"  {len(host)} vs {len(normalized)} lines"]))
    if not any(re.match(r"\s*-\s*job_name:\s*loanledger\s*$", l) for l in host):
        errors.append("prometheus.yml: no job_name: loanledger")


def alert_blocks(text: str) -> dict[str, str]:
    blocks: dict[str, str] = {}
    parts = re.split(r"^\s*-\s*alert:\s*", text, flags=re.M)
    for part in parts[1:]:
        name = part.split("\n", 1)[0].strip()
        body = re.split(r"^\s*-\s*(?:record|alert):", part, flags=re.M)[0]
        if name in blocks:
            blocks[name + " (duplicate)"] = body
        blocks[name] = body
    return blocks


def firing_cases(test_text: str) -> tuple[set[str], set[str]]:
    """alertnames with a firing case and with a silent case in a promtool test file."""
    firing, silent = set(), set()
    for m in re.finditer(r"alertname:\s*(\w+)\s*\n\s*exp_alerts:\s*(\[\s*\])?", test_text):
        (silent if m.group(2) else firing).add(m.group(1))
    return firing, silent


RUNBOOK_PREFIX = "deploy/README.md#"


def markdown_anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file: lowercased,
    punctuation but '-' and '_' dropped, spaces as '-', repeats suffixed -1, -2."""
    anchors: set[str] = set()
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        m = None if in_code else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).replace("`", "").lower()).replace(" ", "-")
        base, n = slug, 0
        while slug in anchors:
            n += 1
            slug = f"{base}-{n}"
        anchors.add(slug)
    return anchors


def check_alerts(deploy: Path, errors: list[str], notes: list[str]) -> None:
    blocks = alert_blocks((deploy / "prometheus/alerts.yml").read_text())
    anchors = markdown_anchors((deploy / "README.md").read_text())
    if not blocks:
        errors.append("alerts.yml: no alert")
    for name, body in blocks.items():
        if name.endswith("(duplicate)"):
            errors.append(f"alerts.yml: alert {name.split()[0]} defined twice")
            continue
        for key, pattern in (("expr", r"^\s*expr:\s*\S"), ("for", r"^\s*for:\s*\d+[smhd]\s*$"),
                             ("severity label", r"^\s*severity:\s*(critical|warning)\s*$"),
                             ("summary annotation", r"^\s*summary:\s*\S"),
                             ("description annotation", r"^\s*description:\s*\S")):
            if not re.search(pattern, body, re.M):
                errors.append(f"alerts.yml: alert {name} lacks {key}")
        if not re.match(r"Loanledger[A-Z]\w*$", name):
            errors.append(f"alerts.yml: alert name {name} does not start with Loanledger")
        # Every alert links its runbook: a section of deploy/README.md that exists.
        runbook = re.search(r"^\s*runbook_url:\s*[\"']?([^\"'\s]+)", body, re.M)
        if not runbook:
            errors.append(f"alerts.yml: alert {name} lacks runbook_url annotation")
        elif not runbook.group(1).startswith(RUNBOOK_PREFIX):
            errors.append(f"alerts.yml: alert {name}: runbook_url {runbook.group(1)} is not {RUNBOOK_PREFIX}<anchor>")
        elif runbook.group(1)[len(RUNBOOK_PREFIX):] not in anchors:
            errors.append(f"alerts.yml: alert {name}: runbook_url {runbook.group(1)} names no section of deploy/README.md")
    firing, silent = firing_cases((deploy / "prometheus/alerts_test.yml").read_text())
    for name in sorted(set(blocks) - firing):
        if not name.endswith("(duplicate)"):
            errors.append(f"alerts_test.yml: no test case where {name} fires")
    for name in sorted((firing | silent) - set(blocks)):
        errors.append(f"alerts_test.yml: tests unknown alert {name}")
    names = set(blocks)
    notes.append(f"{len(names)} alerts; {len(names & firing)} fire in a test, {len(names & silent)} also have "
                 f"a test where they stay silent (others: a silent look-alike series within the firing case)")


def check_compose(deploy: Path, errors: list[str]) -> None:
    text = (deploy / "docker-compose.yml").read_text()
    services = re.search(r"^services:\n((?:[ \t].*\n|\n)*)", text, re.M)
    names = set(re.findall(r"^  ([\w-]+):\s*$", services.group(1), re.M)) if services else set()
    for s in ("loanledgerd", "prometheus", "grafana"):
        if s not in names:
            errors.append(f"docker-compose.yml: no service {s}")
    for path in re.findall(r"(?<![\w.])(\.\.?/[\w./-]*)", text):
        rel = path.split(":")[0]
        if rel.startswith("./secrets/"):
            continue
        if not (deploy / rel).exists():
            errors.append(f"docker-compose.yml: {rel} does not exist (relative to deploy/)")
    if "dockerfile: deploy/Dockerfile" not in text:
        errors.append("docker-compose.yml: loanledgerd is not built from deploy/Dockerfile")
    gi = deploy / ".gitignore"
    if "./secrets/" in text and not (gi.exists() and re.search(r"^/?secrets/?$", gi.read_text(), re.M)):
        errors.append("deploy/.gitignore must list secrets/")
    m = re.search(r"\./grafana/dashboards:([^:\s]+)", text)
    provider = (deploy / "grafana/provisioning/dashboards/loanledger.yml").read_text()
    p = re.search(r"^\s*path:\s*(\S+)", provider, re.M)
    if not m or not p or m.group(1) != p.group(1):
        errors.append("docker-compose.yml mounts ./grafana/dashboards somewhere the Grafana provider does not read "
                      f"({m.group(1) if m else None} vs {p.group(1) if p else None})")


DIGEST = r"@sha256:[0-9a-f]{64}"


def check_images(deploy: Path, errors: list[str]) -> None:
    for path in sorted(deploy.rglob("Dockerfile*")):
        if path.name.endswith(".dockerignore"):
            continue
        rel = path.relative_to(deploy).as_posix()
        text = path.read_text()
        if re.search(r"^#\s*syntax\s*=", text, re.M | re.I):
            errors.append(f"{rel}: a `# syntax=` line fetches a Dockerfile frontend from outside; remove it")
        stages: set[str] = set()
        for image, stage in re.findall(r"^FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", text, re.M | re.I):
            if image not in stages and not re.search(DIGEST + "$", image):
                errors.append(f"{rel}: FROM {image} is not pinned by digest (@sha256:...)")
            if stage:
                stages.add(stage)
    for path in sorted(deploy.rglob("docker-compose*.yml")):
        rel = path.relative_to(deploy).as_posix()
        text = path.read_text()
        if re.search(r"^name\s*:", text, re.M):
            errors.append(f"{rel}: top-level `name:` (Debian's docker-compose 1.29 rejects it; use -p)")
        for image in re.findall(r"^\s*image:\s*[\"']?([^\s\"'#]+)", text, re.M):
            if not image.startswith("loanledger/") and not re.search(DIGEST + "$", image):
                errors.append(f"{rel}: image {image} is not pinned by digest (@sha256:...)")


def install_deps_packages(root: Path) -> set[str]:
    text = (root / "scripts/install-deps.sh").read_text()
    m = re.search(r"PACKAGES=\((.*?)\)", text, re.S)
    return set(m.group(1).split()) if m else set()


def check_dockerfile(deploy: Path, errors: list[str]) -> None:
    text = (deploy / "Dockerfile").read_text()
    joined = text.replace("\\\n", " ")
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", text, re.M | re.I)
    release = re.search(r"^ARG\s+DEBIAN_RELEASE=(\w+)", text, re.M)
    images = [f.replace("${DEBIAN_RELEASE}", release.group(1) if release else "?") for f, _ in froms]
    if len(froms) < 2 or not all(i.startswith("debian:bookworm") for i in images):
        errors.append(f"Dockerfile: expected multi-stage debian:bookworm, got {images}")
    for needle in ("scripts/build.sh", "build/server/loanledgerd", "build/client/loanledger", "COPY --from=build"):
        if needle not in text:
            errors.append(f"Dockerfile: no {needle}")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    if not users or users[-1].split(":")[0] in ("root", "0"):
        errors.append("Dockerfile: the runtime stage does not switch to a non-root USER")
    if not re.search(r"^VOLUME\s", text, re.M):
        errors.append("Dockerfile: no VOLUME for the data directory")
    exposed = set(re.findall(r"\d+", " ".join(re.findall(r"^EXPOSE\s+(.*)$", text, re.M))))
    if not {"7700", "9464"} <= exposed:
        errors.append(f"Dockerfile: EXPOSE {sorted(exposed)} lacks 7700 or 9464")
    # Build-stage packages must be ones scripts/install-deps.sh installs too.
    stage = joined.split("AS runtime")[0]
    pkgs = set()
    for m in re.finditer(r"apt-get install -y --no-install-recommends ([^&]*)", stage):
        pkgs |= set(m.group(1).split())
    allowed = install_deps_packages(deploy.parent) | {"libboost-dev"}  # subset of libboost-all-dev
    for p in sorted(pkgs - allowed):
        errors.append(f"Dockerfile: build package {p} is not in scripts/install-deps.sh")
    if not pkgs:
        errors.append("Dockerfile: no apt-get install in the build stage")
    ignore = deploy / "Dockerfile.dockerignore"
    if not ignore.exists() or not re.search(r"^build$", ignore.read_text(), re.M):
        errors.append("Dockerfile.dockerignore must exclude build/ (a host CMakeCache breaks the image build)")


def unit_directives(text: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for line in text.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        directives.setdefault(key.strip(), []).append(re.sub(r"\s+", " ", value.strip()))
    return directives


def config_file_flags(deploy: Path, exec_start: str, errors: list[str]) -> str:
    """The `--config FILE` of ExecStart as flags: FILE is installed from systemd/<its name>."""
    m = re.search(r"--config\s+(\S+)", exec_start)
    if not m:
        return ""
    conf = deploy / "systemd" / Path(m.group(1)).name
    if not conf.exists():
        errors.append(f"loanledgerd.service: --config {m.group(1)}, but deploy/systemd/{conf.name} does not exist")
        return ""
    flags = []
    for line in conf.read_text().splitlines():
        kv = re.match(r"\s*([a-z][a-z0-9-]*)\s*=\s*\"?([^\"#]*?)\"?\s*(#.*)?$", line)
        if kv:
            flags.append(f"--{kv.group(1)} {kv.group(2)}")
    return " ".join(flags)


def check_unit(deploy: Path, errors: list[str]) -> None:
    d = unit_directives((deploy / "systemd/loanledgerd.service").read_text())
    for key, pattern in UNIT_REQUIRED.items():
        if key not in d:
            errors.append(f"loanledgerd.service: no {key}=")
        elif not re.fullmatch(pattern, d[key][-1]):
            errors.append(f"loanledgerd.service: {key}={d[key][-1]} does not match {pattern!r}")
    if "@system-service" not in d.get("SystemCallFilter", []):
        errors.append("loanledgerd.service: SystemCallFilter does not allow-list @system-service")
    exec_start = d.get("ExecStart", [""])[-1]
    exec_start += " " + config_file_flags(deploy, exec_start, errors)
    if d.get("Type", [""])[-1] == "notify" and not d.get("ExecReload"):
        errors.append("loanledgerd.service: Type=notify without ExecReload= (SIGHUP re-reads the tokens)")
    data = re.search(r"--data\s+(\S+)", exec_start)
    if not data or data.group(1) not in d.get("ReadWritePaths", [""])[-1].split():
        errors.append("loanledgerd.service: the --data directory is not in ReadWritePaths")
    for flag in ("--listen", "--metrics-listen", "--tokens"):
        if flag + " " not in exec_start:
            errors.append(f"loanledgerd.service: ExecStart (or its --config file) lacks {flag}")
    if "127.0.0.1:9464" not in exec_start:
        errors.append("loanledgerd.service: metrics do not listen where prometheus.yml scrapes (127.0.0.1:9464)")


def check_grafana(deploy: Path, errors: list[str]) -> None:
    ds = (deploy / "grafana/provisioning/datasources/prometheus.yml").read_text()
    uids = re.findall(r"^\s*uid:\s*(\S+)", ds, re.M)
    for path in sorted((deploy / "grafana/dashboards").glob("*.json")):
        try:
            dash = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue  # check_dashboards.py reports it
        for var in dash.get("templating", {}).get("list", []):
            if var.get("type") == "datasource":
                value = (var.get("current") or {}).get("value")
                if value not in uids:
                    errors.append(f"{path.name}: datasource variable {var.get('name')} defaults to {value!r}, "
                                  f"not the provisioned uid {uids}")


def check_readme(deploy: Path, errors: list[str]) -> None:
    readme = (deploy / "README.md").read_text()
    for path in sorted(deploy.rglob("*")):
        rel = path.relative_to(deploy).as_posix()
        if path.is_file() and not rel.startswith("secrets/") and rel != "README.md":
            if rel not in readme:
                errors.append(f"README.md does not mention {rel}")
    for line in (deploy / "metrics.txt").read_text().splitlines():
        name = line.strip()
        if name and not name.startswith("#") and name not in readme:
            errors.append(f"README.md does not list metric {name}")


def systemd_verify(deploy: Path) -> int:
    tool = shutil.which("systemd-analyze")
    if not tool:
        print("SKIP: systemd-analyze not installed; only the static checks of check_deploy_files.py ran")
        return SKIP
    unit = (deploy / "systemd/loanledgerd.service").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "loanledgerd.service"
        path.write_text(unit.replace("/usr/local/bin/loanledgerd", "/bin/sleep"))
        run = subprocess.run([tool, "verify", str(path)], capture_output=True, text=True)
        out = (run.stdout + run.stderr).strip()
        if run.returncode != 0 or out:
            print(f"FAIL: systemd-analyze verify loanledgerd.service:\n{out}", file=sys.stderr)
            return 1
        sec = subprocess.run([tool, "security", "--offline=true", str(path)], capture_output=True, text=True)
        last = (sec.stdout.strip().splitlines() or ["(no security report)"])[-1]
        print(f"OK: systemd-analyze verify; security: {last}")
    return 0


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deploy", type=Path, default=root / "deploy")
    ap.add_argument("--systemd-verify", action="store_true", help="run systemd-analyze verify on the unit")
    args = ap.parse_args(argv)
    if args.systemd_verify:
        return systemd_verify(args.deploy)
    errors: list[str] = []
    notes: list[str] = []
    for check in (check_prometheus, check_compose, check_dockerfile, check_images, check_unit, check_grafana,
                  check_readme):
        try:
            check(args.deploy, errors)
        except OSError as e:
            errors.append(f"{check.__name__}: {e}")
    try:
        check_alerts(args.deploy, errors, notes)
    except OSError as e:
        errors.append(f"check_alerts: {e}")
    for n in notes:
        print(n)
    for e in errors:
        print("FAIL: " + e, file=sys.stderr)
    if not errors:
        print("OK")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
