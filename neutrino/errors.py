"""Errors the API reports, with Neutron's wire names.

Services raise these; the api layer renders them as
``{"NeutronError": {"type": ..., "message": ..., "detail": ""}}`` with the
status code each class carries.  ``type`` is the upstream exception name so
clients that branch on it (openstacksdk, tempest) behave the same.
"""

from __future__ import annotations


class NeutronError(Exception):
    status: int = 500
    type: str = "NeutronError"

    def __init__(self, message: str, *, type: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if type is not None:
            self.type = type

    def body(self) -> dict:
        return {"NeutronError": {"type": self.type, "message": self.message, "detail": ""}}


class BadRequest(NeutronError):
    status = 400
    type = "HTTPBadRequest"


class InvalidInput(BadRequest):
    """A value could not be converted or violates a rule of the operation."""

    type = "InvalidInput"

    def __init__(self, reason: str, *, type: str | None = None) -> None:
        super().__init__(f"Invalid input for operation: {reason}", type=type)


class Unauthorized(NeutronError):
    status = 401
    type = "HTTPUnauthorized"


class Forbidden(NeutronError):
    status = 403
    type = "HTTPForbidden"


class PolicyNotAuthorized(Forbidden):
    type = "PolicyNotAuthorized"

    def __init__(self, action: str) -> None:
        super().__init__(f"rule:{action} is disallowed by policy")


class NotFound(NeutronError):
    status = 404
    type = "HTTPNotFound"


class ResourceNotFound(NotFound):
    """``<Kind> <id> could not be found.`` typed ``<Kind>NotFound``."""

    def __init__(self, kind: str, ident: str) -> None:
        label = kind.replace("_", " ").capitalize()
        type_name = "".join(part.capitalize() for part in kind.split("_")) + "NotFound"
        super().__init__(f"{label} {ident} could not be found.", type=type_name)


class MethodNotAllowed(NeutronError):
    status = 405
    type = "HTTPMethodNotAllowed"


class PayloadTooLarge(NeutronError):
    """A request body over ``max_request_body_size`` (webob's exception name)."""

    status = 413
    type = "HTTPRequestEntityTooLarge"


class UriTooLong(NeutronError):
    status = 414
    type = "HTTPRequestURITooLong"


class HeadersTooLarge(NeutronError):
    status = 431
    type = "HTTPRequestHeaderFieldsTooLarge"


class Conflict(NeutronError):
    status = 409
    type = "Conflict"


class InUse(Conflict):
    pass


class OverQuota(Conflict):
    type = "OverQuota"

    def __init__(self, resources: list[str]) -> None:
        super().__init__(f"Quota exceeded for resources: {sorted(resources)}.")


class PreconditionFailed(NeutronError):
    status = 412
    type = "RevisionNumberConstraintFailed"


class Retry(Exception):
    """A transaction lost a race (unique key, deadlock); run it again."""
