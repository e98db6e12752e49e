"""What the identity API accepts, declared once as JSON Schema.

The same fragments validate request bodies and query strings (:func:`check`, a
validator for the subset of JSON Schema used here) and make the OpenAPI document
of the identity API (:mod:`neutrino.identity.openapi`).  The value types are
Keystone's (``keystone/api/validation/parameter_types``): names of 1-255
characters, ids of 1-64 ``[a-zA-Z0-9-]``, booleans that may also be spelled as
strings.  Two limits are ours, because the columns have them: descriptions and
e-mail addresses are at most 255 characters.  No string may hold a NUL character
(PostgreSQL cannot store or even compare one).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from neutrino.identity.errors import IdentityError

NAME: dict = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"\S"}
ID: dict = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[a-zA-Z0-9-]+$"}
DESCRIPTION: dict = {"type": ["string", "null"], "maxLength": 255}
EMAIL: dict = {"type": ["string", "null"], "maxLength": 255}
BOOLEAN: dict = {"type": ["boolean", "string"],
                 "enum": [True, "True", "TRUE", "true", False, "False", "FALSE", "false"]}
#: a string a query filter may compare with (the columns' longest is 255)
FILTER: dict = {"type": "string", "maxLength": 255}
QUERY_BOOLEAN: dict = {"type": "string", "maxLength": 16}
#: an id as a lookup key: anything longer than a column's 64 characters is simply not found
LOOKUP_ID: dict = {"type": "string", "maxLength": 255}


def password(max_length: int, *, nullable: bool) -> dict:
    """Keystone's ``[identity] max_password_length`` bounds every password."""
    return {"type": ["string", "null"] if nullable else "string", "minLength": 1,
            "maxLength": max_length}


def to_bool(value: Any) -> bool:
    """A :data:`BOOLEAN` value (already checked) as a bool."""
    return value if isinstance(value, bool) else value.lower() == "true"


def query_bool(value: str) -> bool:
    """A boolean filter as Keystone reads one: ``?enabled`` alone is true, ``0`` and
    ``false`` (any case) are false."""
    return value.lower() not in ("0", "false")


def obj(properties: dict, required: tuple[str, ...] = (), *, extra: bool = True,
        **more: Any) -> dict:
    schema: dict = {"type": "object", "properties": properties, **more}
    if required:
        schema["required"] = list(required)
    if not extra:
        schema["additionalProperties"] = False
    return schema


def entity_create(kind: str, max_password: int) -> dict:
    """The body of ``POST /v3/{kind}``: ``{"<singular>": {...}}``."""
    fields: dict[str, dict] = {"name": NAME, "description": DESCRIPTION}
    if kind == "domains":
        fields.update(id=ID, enabled=BOOLEAN)
    if kind == "projects":
        fields.update(domain_id=ID, enabled=BOOLEAN)
    if kind == "users":
        fields.update(domain_id=ID, enabled=BOOLEAN, email=EMAIL,
                      default_project_id={"type": ["string", "null"], **_id_rules()},
                      password=password(max_password, nullable=True))
    singular = kind[:-1]
    return obj({singular: obj(fields, ("name",))}, (singular,))


def entity_update(kind: str, max_password: int) -> dict:
    """The body of ``PATCH /v3/{kind}/{id}``; a domain or a project keeps its domain."""
    fields: dict[str, dict] = {"name": NAME, "description": DESCRIPTION}
    if kind in ("domains", "projects", "users"):
        fields["enabled"] = BOOLEAN
    if kind == "users":
        fields.update(email=EMAIL,
                      default_project_id={"type": ["string", "null"], **_id_rules()},
                      password=password(max_password, nullable=True))
    singular = kind[:-1]
    return obj({singular: obj(fields)}, (singular,))


def _id_rules() -> dict:
    return {k: v for k, v in ID.items() if k != "type"}


#: the filters each listing takes (Keystone's, for what this subset stores)
FILTERS: dict[str, dict[str, dict]] = {
    "domains": {"name": FILTER, "enabled": QUERY_BOOLEAN},
    "projects": {"name": FILTER, "domain_id": FILTER, "enabled": QUERY_BOOLEAN},
    "users": {"name": FILTER, "domain_id": FILTER, "enabled": QUERY_BOOLEAN},
    "roles": {"name": FILTER},
}
ASSIGNMENT_FILTERS: dict[str, dict] = {
    "user.id": FILTER, "role.id": FILTER, "scope.project.id": FILTER,
    "scope.domain.id": FILTER, "include_names": {"type": "string", "maxLength": 16},
}


def _ref(*, with_domain: bool) -> dict:
    """``{"id": ...}`` or ``{"name": ..., "domain": {...}}``."""
    props: dict[str, dict] = {"id": LOOKUP_ID, "name": {"type": "string", "maxLength": 255}}
    if with_domain:
        props["domain"] = _ref(with_domain=False)
    return obj(props)


def auth_request(max_password: int) -> dict:
    """``POST /v3/auth/tokens``: Keystone's password and token methods, and the scopes."""
    user = _ref(with_domain=True)
    user["properties"]["password"] = {"type": "string", "maxLength": max_password}
    identity = obj({
        "methods": {"type": "array", "minItems": 1, "items": {"type": "string",
                                                               "maxLength": 64}},
        "password": obj({"user": user}, ("user",)),
        "token": obj({"id": {"type": "string", "maxLength": 1024}}, ("id",)),
    }, ("methods",))
    scope = {"anyOf": [
        {"type": "string", "enum": ["unscoped"]},
        obj({"project": _ref(with_domain=True), "domain": _ref(with_domain=False),
             "system": obj({"all": {"type": "boolean"}})}),
    ]}
    return obj({"auth": obj({"identity": identity, "scope": scope}, ("identity",))},
               ("auth",))


def password_change(max_password: int) -> dict:
    """``POST /v3/users/{id}/password`` (Keystone's ``password_change``)."""
    return obj({"user": obj({
        "original_password": {"type": "string", "maxLength": max_password},
        "password": password(max_password, nullable=False),
    }, ("original_password", "password"), extra=False)}, ("user",))


# -- the validator ---------------------------------------------------------------------------

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,),
    "null": (type(None),), "integer": (int,), "number": (int, float),
}


@cache
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def _is(value: Any, type_name: str) -> bool:
    if isinstance(value, bool) and type_name in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[type_name])


def _fail(where: str, why: str) -> IdentityError:
    return IdentityError(400, f"Invalid input for field '{where}': {why}.")


def check(schema: dict, value: Any, where: str = "") -> None:
    """Raise a 400 :class:`IdentityError` saying what is wrong if ``value`` does not fit."""
    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                check(option, value, where)
                break
            except IdentityError as err:
                errors.append(err.message)
        else:
            raise _fail(where or "body", "no allowed form matches; " + " / ".join(errors))
        return
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_is(value, t) for t in names):
            raise _fail(where or "body", f"expected {' or '.join(names)}, got "
                                         f"{type(value).__name__}")
    if "enum" in schema and not any(type(value) is type(e) and value == e
                                    for e in schema["enum"]):
        raise _fail(where, f"{value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        _check_string(schema, value, where)
    elif isinstance(value, dict):
        _check_object(schema, value, where)
    elif isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise _fail(where, f"at least {schema['minItems']} item(s) are required")
        items = schema.get("items")
        for n, item in enumerate(value):
            if items is not None:
                check(items, item, f"{where}[{n}]")


def _check_string(schema: dict, value: str, where: str) -> None:
    if "\x00" in value:
        raise _fail(where, "a NUL character is not allowed")
    if len(value) < schema.get("minLength", 0):
        raise _fail(where, f"at least {schema['minLength']} character(s) are required")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise _fail(where, f"at most {schema['maxLength']} characters are allowed, "
                           f"not {len(value)}")
    if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
        raise _fail(where, f"does not match {schema['pattern']}")


def _check_object(schema: dict, value: dict, where: str) -> None:
    props = schema.get("properties", {})
    for key in schema.get("required", ()):
        if key not in value:
            raise IdentityError(400, f"Expecting to find {key} in {where or 'the request body'}"
                                     f". The server could not comply with the request since "
                                     f"it is either malformed or otherwise incorrect.")
    if schema.get("additionalProperties") is False:
        unknown = sorted(set(value) - set(props))
        if unknown:
            raise _fail(where or "body", f"unknown attribute(s) {', '.join(unknown)}")
    for key, sub in props.items():
        if key in value:
            check(sub, value[key], f"{where}.{key}" if where else key)


def check_query(filters: dict[str, dict], query: dict[str, str]) -> dict[str, str]:
    """The declared filters of a query string, checked; others are ignored, as Keystone
    ignores filters it does not know."""
    out = {}
    for key, value in query.items():
        if key in filters:
            check(filters[key], value, key)
            out[key] = value
    return out
