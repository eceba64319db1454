"""/openapi.json: its request schemas are the models that validate the bodies, and the document
is valid OpenAPI 3.1 (openapi-spec-validator)."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate

from quartproxy import openapi
from quartproxy.core import messages


def request_refs(doc: dict[str, Any]) -> set[str]:
    names = set()
    for operations in doc["paths"].values():
        for operation in operations.values():
            body = operation.get("requestBody", {})
            for kind, media in body.get("content", {}).items():
                if kind == "multipart/form-data":  # the same fields as text parts, plus files
                    continue
                names.add(media["schema"]["$ref"].rsplit("/", 1)[1])
    return names


def test_the_document_is_valid_openapi() -> None:
    validate(openapi.document())


def test_every_field_of_every_request_model_is_in_the_document() -> None:
    schemas = openapi.document()["components"]["schemas"]
    for model in messages.REQUEST_MODELS:
        documented = schemas[model.__name__]["properties"]
        assert set(model.model_fields) <= set(documented), model.__name__
    assert "honeypot" in schemas["ChatMessage"]["properties"]  # the field that once drifted


def test_multipart_bodies_name_the_fields_of_their_json_model() -> None:
    doc = openapi.document()
    schemas = doc["components"]["schemas"]
    for operations in doc["paths"].values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            if "multipart/form-data" in content:
                model = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
                parts = set(content["multipart/form-data"]["schema"]["properties"])
                assert parts - {"files"} == set(schemas[model]["properties"]), model


def test_every_request_body_is_described_by_a_model_that_validates() -> None:
    validating = {model.__name__ for model in messages.REQUEST_MODELS}
    assert request_refs(openapi.document()) == validating
