"""Checks the local runtime's AWS::LanguageExtensions expansion against SAM CLI's own: both must
generate the same resources (logical id and type) and outputs from template.yaml.

Usage: python extensions.py template.yaml ours.json   (ours: `cargo run -q -- template`)
"""

import json
import sys

from samcli.lib.cfn_language_extensions.sam_integration import expand_language_extensions
from samcli.yamlhelper import yaml_parse


def summary(template):
    """Logical id -> type of every resource, and the output names."""
    resources = {rid: r.get("Type") for rid, r in template.get("Resources", {}).items()}
    return resources, sorted(template.get("Outputs", {}))


def main(template_path, ours_path):
    with open(template_path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    theirs = summary(expand_language_extensions(template, enabled=True).expanded_template)
    with open(ours_path, encoding="utf-8") as f:
        ours = summary(json.load(f))
    if ours != theirs:
        only_ours = sorted(set(ours[0].items()) - set(theirs[0].items()))
        only_theirs = sorted(set(theirs[0].items()) - set(ours[0].items()))
        sys.exit(
            "the local expansion differs from SAM CLI's:\n"
            f"  resources only here: {only_ours}\n  resources only in SAM's: {only_theirs}\n"
            f"  outputs here: {ours[1]}\n  outputs in SAM's: {theirs[1]}"
        )
    print(f"language extensions: the same {len(ours[0])} resources and {len(ours[1])} outputs as SAM CLI's")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
