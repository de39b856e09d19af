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
