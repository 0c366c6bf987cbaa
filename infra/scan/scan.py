"""Runs the template scanners on template.yaml (as the AWS::LanguageExtensions transform leaves
it: the scanners do not expand loops) and on its SAM-expanded form, and compares
their findings with suppressions.yaml: a finding that no entry covers fails the scan, and so
does an entry that covers no finding (a suppression outlives its reason).

Usage: python scan.py <extended.json> <expanded.json> <suppressions.yaml>
"""

import fnmatch
import json
import subprocess
import sys

import yaml
from cfnlint.decode import decode


def resource_types(path):
    """Logical id -> resource type of a template (CloudFormation's YAML tags understood)."""
    template, errors = decode(path)
    if errors:
        sys.exit(f"{path}: {errors}")
    return {rid: r.get("Type", "") for rid, r in template.get("Resources", {}).items()}


def checkov(path):
    """(check id, logical id, title) of every failed checkov check on a template."""
    run = subprocess.run(
        ["checkov", "-f", path, "--framework", "cloudformation", "-o", "json", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(run.stdout or "{}")
    reports = report if isinstance(report, list) else [report]
    for r in reports:
        for failed in r.get("results", {}).get("failed_checks", []):
            logical_id = failed["resource"].rsplit(".", 1)[-1]
            yield failed["check_id"], logical_id, failed["check_name"]


def cfn_lint_serverless(path):
    """(rule id, logical id, message) of every cfn-lint finding with the serverless rules."""
    run = subprocess.run(
        ["cfn-lint", "--append-rules", "cfn_lint_serverless.rules", "--format", "json", "--", path],
        capture_output=True,
        text=True,
        check=False,
    )
    for finding in json.loads(run.stdout or "[]"):
        where = finding["Location"]["Path"]
        logical_id = where[1] if len(where) > 1 and where[0] == "Resources" else "(template)"
        yield finding["Rule"]["Id"], logical_id, finding["Message"]


def main(template, expanded, suppressions_path):
    with open(suppressions_path, encoding="utf-8") as f:
        suppressions = yaml.safe_load(f)
    used = [False] * len(suppressions)
    unexplained = []
    total = 0
    for form, path in (("template.yaml", template), ("expanded", expanded)):
        types = resource_types(path)
        for tool, findings in (("checkov", checkov(path)), ("cfn-lint", cfn_lint_serverless(path))):
            for check, logical_id, text in findings:
                total += 1
                kind = types.get(logical_id, "")
                matches = [
                    i
                    for i, s in enumerate(suppressions)
                    if s["check"] == check
                    and any(fnmatch.fnmatchcase(logical_id, r) or kind == r for r in s["resources"])
                ]
                for i in matches:
                    used[i] = True
                if not matches:
                    unexplained.append(f"{form}: {tool} {check} on {logical_id} ({kind}): {text}")
    stale = [s["check"] for s, u in zip(suppressions, used) if not u]
    print(f"{total} findings on template.yaml and its expansion, all covered by "
          f"{len(suppressions)} suppressions" if not unexplained else f"{total} findings")
    for line in unexplained:
        print(f"NOT SUPPRESSED: {line}")
    for check in stale:
        print(f"STALE SUPPRESSION: {check} matches no finding any more")
    if unexplained or stale:
        sys.exit(1)


if __name__ == "__main__":
    main(*sys.argv[1:4])
