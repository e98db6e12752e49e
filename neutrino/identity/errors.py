"""Keystone's error envelope: ``{"error": {"code", "title", "message"}}``."""

from __future__ import annotations

from http import HTTPStatus

#: one message for every failed password authentication, whatever failed (the user, its
#: domain, the password): it tells an attacker nothing
AUTH_FAILED = "The request you have made requires authentication."


class IdentityError(Exception):
    def __init__(self, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers

    @property
    def title(self) -> str:
        try:
            return HTTPStatus(self.code).phrase
        except ValueError:
            return "Error"

    def body(self) -> dict:
        return {"error": {"code": self.code, "title": self.title, "message": self.message}}


def unauthorized(message: str = AUTH_FAILED) -> IdentityError:
    return IdentityError(401, message)


def forbidden(message: str = "You are not authorized to perform the requested action.") \
        -> IdentityError:
    return IdentityError(403, message)
