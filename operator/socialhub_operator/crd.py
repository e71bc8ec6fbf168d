"""The SocialHub CustomResourceDefinition, generated from the spec models.

Pydantic's JSON schema is turned into a structural OpenAPI v3 schema: `$ref`s inlined, optional
fields unwrapped, titles dropped, nested objects defaulted to their defaulted value so the API
server fills them in too, and each model's CEL rules attached as `x-kubernetes-validations`.
`crds/socialhub.dev_socialhubs.yaml` is this output (a test keeps it in sync).
"""

import json
from typing import Any

from pydantic import BaseModel

from socialhub_operator.spec import (
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    SocialHubSpec,
    SpecModel,
)

Schema = dict[str, Any]
MAX_NAME_LENGTH = 30  # leaves room for "-notifications" and job suffixes within 63 characters
KEPT_KEYS = {
    "type",
    "properties",
    "required",
    "items",
    "additionalProperties",
    "default",
    "enum",
    "description",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "maxItems",
    "minItems",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
}


def _models(
    model: type[BaseModel], found: dict[str, type[SpecModel]]
) -> dict[str, type[SpecModel]]:
    """Every SpecModel reachable from `model`, by class name (pydantic's `$defs` keys)."""
    if issubclass(model, SpecModel):
        found[model.__name__] = model
    for field in model.model_fields.values():
        for candidate in _nested_types(field.annotation):
            if (
                isinstance(candidate, type)
                and issubclass(candidate, BaseModel)
                and candidate.__name__ not in found
            ):
                _models(candidate, found)
    return found


def _nested_types(annotation: Any) -> list[Any]:
    arguments = getattr(annotation, "__args__", ())
    return [annotation, *[t for arg in arguments for t in _nested_types(arg)]]


def _structural(node: Schema, definitions: Schema, models: dict[str, type[SpecModel]]) -> Schema:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        resolved = _structural(definitions[name], definitions, models)
        rules = [rule.model_dump() for rule in models[name].cel] if name in models else []
        if rules:
            resolved["x-kubernetes-validations"] = rules
        return {**resolved, **{k: v for k, v in node.items() if k in KEPT_KEYS}}
    if "anyOf" in node:
        variants = [v for v in node["anyOf"] if v.get("type") != "null"]
        types = {v.get("type") for v in variants}
        if types == {"string", "integer"}:
            merged: Schema = {"x-kubernetes-int-or-string": True}
        else:
            assert len(variants) == 1, f"unsupported union in CRD schema: {node}"
            merged = _structural(variants[0], definitions, models)
        extras = {k: v for k, v in node.items() if k in KEPT_KEYS and k != "default"}
        if node.get("default") is not None:
            extras["default"] = node["default"]
        return {**merged, **extras}
    out: Schema = {}
    for key, value in node.items():
        if key not in KEPT_KEYS:
            continue
        if key == "properties":
            out[key] = {
                name: _structural(prop, definitions, models) for name, prop in value.items()
            }
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _structural(value, definitions, models)
        else:
            out[key] = value
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out["type"] = "object"
    if isinstance(out.get("additionalProperties"), bool):
        # Structural schemas prune unknown fields anyway; a boolean here is not allowed.
        del out["additionalProperties"]
    return out


def _default_nested_objects(model: type[BaseModel], node: Schema) -> None:
    """Sub-objects built by a default factory get their defaults, so a missing one appears."""
    for name, field in model.model_fields.items():
        prop = node["properties"][field.alias or name]
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if field.default_factory is not None:
                # The whole defaulted object, not `{}`: CEL rules are checked against defaults.
                prop["default"] = annotation().model_dump(
                    by_alias=True, exclude_none=True, mode="json"
                )
            _default_nested_objects(annotation, prop)


def spec_schema() -> Schema:
    raw = SocialHubSpec.model_json_schema(by_alias=True, mode="serialization")
    models = _models(SocialHubSpec, {})
    root = _structural({k: v for k, v in raw.items() if k != "$defs"}, raw.get("$defs", {}), models)
    _default_nested_objects(SocialHubSpec, root)
    root["type"] = "object"
    return root


def _condition_schema() -> Schema:
    return {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer"},
        },
    }


def status_schema() -> Schema:
    return {
        "type": "object",
        "properties": {
            "observedGeneration": {"type": "integer"},
            "version": {"type": "string", "description": "version fully rolled out"},
            "conditions": {
                "type": "array",
                "items": _condition_schema(),
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
            "components": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "replicas": {"type": "integer"},
                        "readyReplicas": {"type": "integer"},
                        "minReplicas": {"type": "integer"},
                        "maxReplicas": {"type": "integer"},
                        "image": {"type": "string"},
                    },
                },
            },
        },
    }


def _ready_column(field: str, name: str) -> Schema:
    return {
        "name": name,
        "type": "string",
        "jsonPath": f'.status.conditions[?(@.type=="Ready")].{field}',
    }


def definition() -> Schema:
    # A JSON round trip unshares sub-objects that pydantic's `$defs` reuse (no YAML anchors).
    return json.loads(json.dumps(_definition()))  # type: ignore[no-any-return]


def _definition() -> Schema:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "socialhub-operator"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["shub"],
                "categories": ["all", "socialhub"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        _ready_column("status", "Ready"),
                        _ready_column("reason", "Reason"),
                        {"name": "Version", "type": "string", "jsonPath": ".spec.version"},
                        {
                            "name": "Rolled-Out",
                            "type": "string",
                            "jsonPath": ".status.version",
                            "priority": 1,
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "One SocialHub platform: five services, the nginx "
                            "gateway, their migrations, topics, autoscalers and budgets.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": status_schema(),
                            },
                            "x-kubernetes-validations": [
                                {
                                    "rule": f"self.metadata.name.size() <= {MAX_NAME_LENGTH}",
                                    "message": f"name must be at most {MAX_NAME_LENGTH} characters",
                                }
                            ],
                        }
                    },
                }
            ],
        },
    }
