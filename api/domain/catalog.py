"""Stages, process types and item kinds of the national data-exchange standard (DOMAIN.md §3)."""

from __future__ import annotations

from enum import Enum, IntEnum


class Stage(IntEnum):
    """审批阶段 (DYBZSPJDXH)."""

    LAND_AND_PLANNING = 1  # 立项用地规划许可
    ENGINEERING_PERMIT = 2  # 工程建设许可
    CONSTRUCTION_PERMIT = 3  # 施工许可
    COMPLETION_ACCEPTANCE = 4  # 竣工验收
    PARALLEL = 5  # 并行推进

    @property
    def label(self) -> str:
        return STAGE_NAMES[self]


STAGE_NAMES = {
    Stage.LAND_AND_PLANNING: "立项用地规划许可",
    Stage.ENGINEERING_PERMIT: "工程建设许可",
    Stage.CONSTRUCTION_PERMIT: "施工许可",
    Stage.COMPLETION_ACCEPTANCE: "竣工验收",
    Stage.PARALLEL: "并行推进",
}


class ProcessType(IntEnum):
    """审批流程类型 (SPLCLX)."""

    GOVERNMENT_BUILDING = 1
    GOVERNMENT_LINEAR = 2
    SOCIAL_GENERAL = 3
    SOCIAL_SMALL = 4
    LAND_WITH_SCHEME = 5
    INDUSTRIAL = 6
    TRANSPORT = 7
    WATER = 8
    ENERGY = 9
    OTHER = 10

    @property
    def label(self) -> str:
        return PROCESS_TYPE_NAMES[self]


PROCESS_TYPE_NAMES = {
    ProcessType.GOVERNMENT_BUILDING: "政府投资(房屋建筑类)",
    ProcessType.GOVERNMENT_LINEAR: "政府投资(线性工程类)",
    ProcessType.SOCIAL_GENERAL: "一般社会投资",
    ProcessType.SOCIAL_SMALL: "小型社会投资",
    ProcessType.LAND_WITH_SCHEME: "带方案出让用地",
    ProcessType.INDUSTRIAL: "工业类",
    ProcessType.TRANSPORT: "交通",
    ProcessType.WATER: "水利",
    ProcessType.ENERGY: "能源",
    ProcessType.OTHER: "其他",
}


class ItemKind(str, Enum):
    """事项类型 [规程 3]; all kinds are tracked the same way."""

    ADMINISTRATIVE_LICENSE = "ADMINISTRATIVE_LICENSE"  # 行政许可
    TECHNICAL_REVIEW = "TECHNICAL_REVIEW"  # 技术审查
    INTERMEDIARY_SERVICE = "INTERMEDIARY_SERVICE"  # 中介服务
    UTILITY_SERVICE = "UTILITY_SERVICE"  # 市政公用服务
    FILING = "FILING"  # 备案
    OTHER = "OTHER"  # 其他
