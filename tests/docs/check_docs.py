#!/usr/bin/env python3
"""The reference manual cannot drift from the code, nor dangle.

1. Every relative link in the repository's Markdown files resolves: the
   file or folder exists, and a `#anchor` into a Markdown file names one of
   its headings (GitHub's anchor rules).
2. Every reason code the code names (schema/reason.cc, ReasonName) appears
   in docs/data.md.
3. Every category the CLI accepts (`loanledger report --help`) appears in
   docs/categories.md, the high-tech manufacturing prefixes of
   schema/category.cc are exactly the prefixes of its table, and every
   province name of schema/province.cc is in its provinces table.
4. Every metric family the server registers (the `loanledger_*` names
   quoted in server/*.cc) and every family of deploy/metrics.txt appears
   in docs/metrics.md.

usage: check_docs.py BUILD_DIR
"""
import glob
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SKIP_DIRS = {".git", "node_modules", "run", "third_party", "corpus", "regressions"}


def markdown_files():
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith("build")]
        for name in filenames:
            if name.endswith(".md"):
                yield os.path.join(dirpath, name)


def strip_code(text):
    """Markdown without fenced code blocks and inline code spans (links there are not links)."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(path, cache={}):
    """GitHub's heading anchors of a Markdown file."""
    if path not in cache:
        found = set()
        counts = {}
        text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", open(path, encoding="utf-8").read(),
                      flags=re.S | re.M)
        for m in re.finditer(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, flags=re.M):
            slug = m.group(1).strip().lower()
            slug = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", slug)  # a link in a heading: its text
            slug = re.sub(r"[^\w\- ]", "", slug)  # keeps letters (any script), digits, _ - and spaces
            slug = slug.replace(" ", "-")
            n = counts.get(slug, 0)
            counts[slug] = n + 1
            found.add(slug if n == 0 else f"{slug}-{n}")
        for m in re.finditer(r"<a\s+(?:name|id)=\"([^\"]+)\"", text):
            found.add(m.group(1))
        cache[path] = found
    return cache[path]


def check_links(errors):
    count = 0
    for path in markdown_files():
        text = strip_code(open(path, encoding="utf-8").read())
        for m in re.finditer(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text):
            target = m.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            count += 1
            rel = os.path.relpath(path, ROOT)
            file_part, _, anchor = target.partition("#")
            dest = path if not file_part else os.path.normpath(
                os.path.join(os.path.dirname(path), file_part))
            if not os.path.exists(dest):
                errors.append(f"{rel}: link to {target}: {os.path.relpath(dest, ROOT)} does not exist")
                continue
            if anchor and dest.endswith(".md") and anchor not in anchors(dest):
                errors.append(f"{rel}: link to {target}: no heading with anchor #{anchor} in "
                              f"{os.path.relpath(dest, ROOT)}")
    return count


def words_missing(names, page, errors, what):
    text = open(os.path.join(ROOT, page), encoding="utf-8").read()
    for name in sorted(names):
        if not re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text):
            errors.append(f"{page}: {what} {name} is not described (add it to the page)")


def reason_names():
    source = open(os.path.join(ROOT, "schema", "reason.cc"), encoding="utf-8").read()
    body = source[source.index("ReasonName("):source.index("ReasonDescription(")]
    names = set(re.findall(r'return "([A-Z_]+)";', body)) - {"OK", "UNKNOWN"}
    if not names:
        raise SystemExit("FAIL: no reason names found in schema/reason.cc (update check_docs.py)")
    return names


def category_names(build):
    """The categories of the shipped default rules file (TOTAL is implicit)."""
    del build  # the CLI accepts any well-formed name since rules are data
    with open(os.path.join(ROOT, "rules", "default.json"), encoding="utf-8") as f:
        names = {c["name"] for c in json.load(f)["categories"]} | {"TOTAL"}
    if len(names) < 2:
        raise SystemExit("FAIL: rules/default.json lists no categories (update check_docs.py)")
    return names


def high_tech_prefixes_code():
    for path in glob.glob(os.path.join(ROOT, "schema", "*.cc")):
        source = open(path, encoding="utf-8").read()
        m = re.search(r"kHighTechPrefixes\s*=\s*\{(.*?)\};", source, flags=re.S)
        if m:
            return set(re.findall(r'"(C\d+)"', m.group(1)))
    raise SystemExit("FAIL: kHighTechPrefixes not found in schema/*.cc (update check_docs.py)")


def high_tech_prefixes_page():
    text = open(os.path.join(ROOT, "docs", "categories.md"), encoding="utf-8").read()
    section = text[text.index("## High-tech manufacturing"):]
    section = section[:section.index("\n## ", 1)]
    return set(re.findall(r"^\| (C\d+) \|", section, flags=re.M))


def province_names():
    """(code, name) pairs of schema/province.cc; empty when the file does not exist."""
    path = os.path.join(ROOT, "schema", "province.cc")
    if not os.path.exists(path):
        return []
    return re.findall(r'\{"(\d\d)", "([^"]+)", "[^"]*"\}', open(path, encoding="utf-8").read())


def metric_names():
    names = set()
    for path in glob.glob(os.path.join(ROOT, "server", "*.cc")):
        found = re.findall(r'"(loanledger_[a-z0-9_]+)"', open(path, encoding="utf-8").read())
        names |= {n for n in found if not n.endswith("_")}  # a prefix joined to names elsewhere
    for line in open(os.path.join(ROOT, "deploy", "metrics.txt"), encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#"):
            names.add(line)
    return names


def policy_prefixes():
    """STRATEGIC_EMERGING's industry prefixes in rules/policy-2025.json and in docs/policy-2025.md's
    mapping table; (None, None) before the file exists."""
    path = os.path.join(ROOT, "rules", "policy-2025.json")
    if not os.path.exists(path):
        return None, None
    with open(path, encoding="utf-8") as f:
        rule = next(c["rule"] for c in json.load(f)["categories"] if c["name"] == "STRATEGIC_EMERGING")
    in_file = {p for field in rule["any"] for p in field["industry_prefix"]}
    text = open(os.path.join(ROOT, "docs", "policy-2025.md"), encoding="utf-8").read()
    section = text[text.index("## STRATEGIC_EMERGING"):]
    section = section[:section.index("\n## ", 1)]
    return in_file, set(re.findall(r"^\| ([A-T]\d*) \|", section, flags=re.M))


def main():
    build = os.path.abspath(sys.argv[1])
    errors = []
    links = check_links(errors)
    reasons = reason_names()
    words_missing(reasons, "docs/data.md", errors, "reason code")
    categories = category_names(build)
    words_missing(categories, "docs/categories.md", errors, "category")
    code, page = high_tech_prefixes_code(), high_tech_prefixes_page()
    for p in sorted(code - page):
        errors.append(f"docs/categories.md: high-tech prefix {p} of the code is not in the table")
    for p in sorted(page - code):
        errors.append(f"docs/categories.md: high-tech prefix {p} of the table is not in the code")
    provinces = province_names()
    categories_page = open(os.path.join(ROOT, "docs", "categories.md"), encoding="utf-8").read()
    for province, name in provinces:
        if f"| {province} | {name} |" not in categories_page:
            errors.append(f"docs/categories.md: province {province} {name} is not in the provinces table")
    metrics = metric_names()
    words_missing(metrics, "docs/metrics.md", errors, "metric")
    policy_file, policy_page = policy_prefixes()
    if policy_file is not None:
        for p in sorted(policy_file - policy_page):
            errors.append(f"docs/policy-2025.md: STRATEGIC_EMERGING prefix {p} of the file is not in the mapping")
        for p in sorted(policy_page - policy_file):
            errors.append(f"docs/policy-2025.md: mapping prefix {p} is not in rules/policy-2025.json")
    for e in errors:
        print("FAIL:", e)
    print(f"docs check: {'FAILED' if errors else 'passed'} ({links} relative links, "
          f"{len(reasons)} reason codes, {len(categories)} categories, {len(code)} high-tech "
          f"prefixes, {len(provinces)} province names, {len(metrics)} metric families)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
