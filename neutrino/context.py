"""Who is asking: the request context every service call receives."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Context:
    project_id: str
    user_id: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False
    request_id: str = ""

    @property
    def is_reader_only(self) -> bool:
        """A token that may read but not write (the ``reader`` role alone)."""
        return not self.is_admin and bool(self.roles) and self.roles <= {"reader"}

    @classmethod
    def admin(cls, project_id: str = "admin") -> Context:
        return cls(project_id=project_id, roles=frozenset({"admin"}), is_admin=True)
