"""Roles of the people who use the service (DESIGN.md §4)."""

from __future__ import annotations

from enum import Enum


class Role(str, Enum):
    APPLICANT = "APPLICANT"  # acts for an organisation: its projects, applications, certificates
    CITIZEN = "CITIZEN"  # own complaints and ratings
    WINDOW_CLERK = "WINDOW_CLERK"  # 综合服务窗口: receives, checks and accepts applications of a region
    APPROVER = "APPROVER"  # 审批服务单位: decides its own department's cases
    SUPERVISOR = "SUPERVISOR"  # reads all, statistics, appeals
    ADMIN = "ADMIN"  # manages the platform; reads all

    @property
    def is_staff(self) -> bool:
        return self in STAFF_ROLES


STAFF_ROLES = frozenset({Role.WINDOW_CLERK, Role.APPROVER, Role.SUPERVISOR, Role.ADMIN})
READ_ALL_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN})


# Password policy for staff sign-in (issue #3): at least 8 characters from at least 3 of the 4 classes.
PASSWORD_MIN_LENGTH = 8
PASSWORD_MIN_CLASSES = 3
# Every demo staff member signs in with this published password (api/demo.py, development only). No one may choose it,
# so only the demo's own accounts can hold it, which keeps production's start-up check of it cheap
# (api/services/leftovers.py).
DEMO_STAFF_PASSWORD = "Jianshen-demo-2026"


def password_problem(password: str) -> str | None:
    """Why ``password`` breaks the policy (Chinese, for the user), or None when it is acceptable."""
    classes = sum(
        [
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
    )
    if len(password) < PASSWORD_MIN_LENGTH or classes < PASSWORD_MIN_CLASSES:
        return "密码至少 8 位，且须包含大写字母、小写字母、数字、符号中的至少三类"
    if password == DEMO_STAFF_PASSWORD:
        return "该密码是演示数据公开的密码，不能使用"
    return None
