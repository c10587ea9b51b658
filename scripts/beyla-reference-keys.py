#!/usr/bin/env python3
"""Flattens Beyla's configuration JSON schema (docs/config-schema.json in
Beyla's repository) into the key list that agent/src/config/reference-keys.tsv
holds and the agent's key table is tested against:

    python3 scripts/beyla-reference-keys.py config-schema.json > agent/src/config/reference-keys.tsv

One line per key: the dotted path (`list[]` for the maps of a list, `map.*` for
the free names of a map of sections), its shape (section, entries, named,
scalar, list, map) and the variable that sets it in Beyla, if any.

The schema is generated from Go structs, so a few of its entries are not YAML
keys: fields with a capitalised name have no YAML tag (they are read from the
environment only, or are internal), and port sets are structs in Go but one
string or number in YAML. Those are corrected here.
"""
import json
import sys

# Keys that Beyla's docs pages name and its schema lacks (older names it still reads).
DOCUMENTED_ONLY = [
    ("ebpf.enable_context_propagation", "scalar", "BEYLA_BPF_ENABLE_CONTEXT_PROPAGATION"),
]

# Variables Beyla reads that set no key of the schema (written with `-` as
# their key): selection and names by variable only, the standard OTLP ones.
VARIABLES_ONLY = [
    "BEYLA_AUTO_TARGET_EXE",
    "BEYLA_AUTO_TARGET_LANGUAGE",
    "BEYLA_CONFIG_PATH",
    "BEYLA_EXECUTABLE_PATH",
    "BEYLA_KUBE_META_SOURCE_LABEL_SERVICE_NAME",
    "BEYLA_KUBE_META_SOURCE_LABEL_SERVICE_NAMESPACE",
    "BEYLA_RESOURCE_ATTRIBUTES",
    "BEYLA_SERVICE_NAME",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_RESOURCE_ATTRIBUTES",
]


def main(path):
    schema = json.load(open(path))
    defs = schema["$defs"]
    rows = []

    def resolve(node):
        while "$ref" in node:
            env = node.get("x-env-var")
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
            if env and "x-env-var" not in node:
                node = dict(node, **{"x-env-var": env})
        return node

    def shape(node):
        node = resolve(node)
        props = {k: v for k, v in node.get("properties", {}).items() if not k[0].isupper()}
        if node.get("properties") and not props:
            # Only untagged fields: a Go type read from one YAML value, such as
            # a port set (`80,443,8000-8999`) or an SDK name.
            return "scalar"
        if "oneOf" in node or "anyOf" in node:
            return "scalar"
        kind = node.get("type")
        if kind == "object":
            if props:
                return "section"
            extra = node.get("additionalProperties")
            if isinstance(extra, dict) and shape(extra) == "section":
                return "named"
            return "map"
        if kind == "array":
            return "entries" if shape(node.get("items", {})) == "section" else "list"
        return "scalar"

    def walk(node, prefix, seen):
        ref = node.get("$ref")
        if ref is not None:
            if ref in seen:
                return  # a type that contains itself
            seen = seen | {ref}
        node = resolve(node)
        kind = shape(node)
        if prefix:
            env = node.get("x-env-var", "")
            # Variables set top-level settings, never the maps of a list (the
            # schema repeats the variable of the type a list entry reuses).
            if env == "-" or "[]" in prefix:
                env = ""
            rows.append((prefix, kind, env))
        if kind == "section":
            children = node["properties"]
        elif kind == "entries":
            children = resolve(node["items"])["properties"]
            prefix += "[]"
        elif kind == "named":
            children = resolve(node["additionalProperties"])["properties"]
            prefix += ".*"
        else:
            return
        for name, child in sorted(children.items()):
            if name[0].isupper():
                continue  # no YAML tag: not a key
            walk(child, f"{prefix}.{name}" if prefix else name, seen)

    walk(schema, "", frozenset())
    rows.extend(DOCUMENTED_ONLY)
    rows.extend(("-", "variable", name) for name in VARIABLES_ONLY)
    for row in sorted(rows):
        print("\t".join(row))


if __name__ == "__main__":
    main(sys.argv[1])
