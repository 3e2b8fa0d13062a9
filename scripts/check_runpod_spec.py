"""Compare the project's REST v2 schemas (standins/runpod_api/spec.py) with a copy of RunPod's OpenAPI document.

    python scripts/check_runpod_spec.py PATH/openapi.json

For every schema of ours that the document also names: the same properties, the same required ones, the
same enum values (objects flattened through allOf). Prints each difference and exits 1 when there is one,
so a new RunPod spec release shows at once what changed for this project. The document is read, never
copied into the project.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from standins.runpod_api.spec import DEFS, SPEC_VERSION  # noqa: E402

# Our departures from the document, each explained in spec.py's docstring.
OURS_ONLY = {"Pagination", "Env", "Ports", "ListPodsResponse.pagination", "ListNetworkVolumesResponse.pagination"}


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow $ref and merge allOf into one {properties, required, enum}."""
    if "$ref" in schema:
        return resolve(doc, doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]])
    merged: dict[str, Any] = {"properties": {}, "required": set(), "enum": schema.get("enum")}
    for part in schema.get("allOf", []):
        sub = resolve(doc, part)
        merged["properties"].update(sub["properties"])
        merged["required"] |= sub["required"]
        merged["enum"] = merged["enum"] or sub["enum"]
    merged["properties"].update(schema.get("properties", {}))
    merged["required"] |= set(schema.get("required", []))
    return merged


def differences(doc: dict[str, Any]) -> list[str]:
    spec_schemas = doc["components"]["schemas"]
    out: list[str] = []
    for name, ours in DEFS.items():
        if name not in spec_schemas:
            if name not in OURS_ONLY:
                out.append(f"{name}: not in the document")
            continue
        theirs = resolve(doc, spec_schemas[name])
        if ours.get("enum") or theirs["enum"]:
            if set(ours.get("enum") or []) != set(theirs["enum"] or []):
                out.append(f"{name}: enum {sorted(ours.get('enum') or [])} != {sorted(theirs['enum'] or [])}")
            continue
        props = set(ours.get("properties", {})) - {p.split(".")[1] for p in OURS_ONLY if p.startswith(name + ".")}
        if props != set(theirs["properties"]):
            extra, missing = sorted(props - set(theirs["properties"])), sorted(set(theirs["properties"]) - props)
            out.append(f"{name}: properties only ours {extra}, only the document's {missing}")
        if set(ours.get("required", [])) != theirs["required"]:
            out.append(f"{name}: required {sorted(ours.get('required', []))} != {sorted(theirs['required'])}")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    doc = json.loads(Path(argv[0]).read_text())
    found = differences(doc)
    print(f"ours: {SPEC_VERSION}\ntheirs: {doc.get('info', {}).get('title')} {doc.get('info', {}).get('version')}")
    for line in found:
        print("  " + line)
    print("no differences" if not found else f"{len(found)} difference(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
