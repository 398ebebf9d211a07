"""The review workspace's tables, as SQLAlchemy 2 typed ORM classes.

One database per graded output folder. Portable between SQLite (the default, in WAL mode) and
PostgreSQL: plain types only, JSON kept as text, and timestamps stored in UTC (`UtcDateTime`) since
SQLite has no time zones. Ids are the rubric's criterion ids and the graded student ids.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (Boolean, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        TypeDecorator)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID_LENGTH = 128
NAME_LENGTH = 200


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime in, an aware UTC datetime out, on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("a naive datetime would be stored in an unknown zone; pass an aware one")
        utc = value.astimezone(timezone.utc)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


class Student(Base):
    """A graded submission of OUT (its result.json); refreshed by each import."""

    __tablename__ = "students"

    student_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))
    folder: Mapped[str] = mapped_column(Text, default="")


class CriterionRow(Base):
    """A rubric criterion; `position` keeps the rubric's order (questions, then criteria)."""

    __tablename__ = "criteria"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    question_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    manual: Mapped[bool] = mapped_column(Boolean)
    max_points: Mapped[float] = mapped_column(Float)
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)


class ScoreRow(Base):
    """The TA's current score of one criterion of one student. `version` counts saves: a save names
    the version it was based on and is refused when another TA saved in between."""

    __tablename__ = "scores"

    student_id: Mapped[str] = mapped_column(ForeignKey("students.student_id"), primary_key=True)
    criterion_id: Mapped[str] = mapped_column(ForeignKey("criteria.id"), primary_key=True)
    items: Mapped[str] = mapped_column(Text, default="[]", doc="the checked rubric item ids, a JSON list")
    adjustment: Mapped[float] = mapped_column(Float, default=0.0)
    adjustment_comment: Mapped[str] = mapped_column(Text, default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    score: Mapped[float] = mapped_column(Float)
    grader: Mapped[str] = mapped_column(String(NAME_LENGTH))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("version >= 1", name="score_version_positive"),)


class ScoreHistoryRow(Base):
    """Every save of a score, and every save refused as a conflict (applied false): who, when, the
    value before and the value given, both as JSON (old_value null for the first save)."""

    __tablename__ = "score_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    student_id: Mapped[str] = mapped_column(ForeignKey("students.student_id"))
    criterion_id: Mapped[str] = mapped_column(ForeignKey("criteria.id"))
    grader: Mapped[str] = mapped_column(String(NAME_LENGTH))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    old_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    new_value: Mapped[str] = mapped_column(Text)
    applied: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (Index("ix_score_history_score", "student_id", "criterion_id", "id"),)


class CommentRow(Base):
    """A reusable comment for one question, offered to every TA grading it."""

    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    question_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    text: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(NAME_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RegradeRow(Base):
    """A student's request to look again at one criterion, open until a TA resolves it."""

    __tablename__ = "regrade_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    student_id: Mapped[str] = mapped_column(ForeignKey("students.student_id"), index=True)
    criterion_id: Mapped[str] = mapped_column(ForeignKey("criteria.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), default="open")
    resolution: Mapped[str] = mapped_column(Text, default="")
    resolved_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (CheckConstraint("status IN ('open', 'resolved')", name="regrade_status"),)


class AssignmentRow(Base):
    """A question or a student given to one TA (exactly one of the two)."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ta: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)
    question_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    student_id: Mapped[str | None] = mapped_column(ForeignKey("students.student_id"), nullable=True)

    __table_args__ = (CheckConstraint("(question_id IS NULL) <> (student_id IS NULL)", name="assignment_one_target"),)


class ItemPointsRow(Base):
    """A rubric item's points as changed in the review app (grader.review.item_points); the rubric
    file's points hold for every item without a row."""

    __tablename__ = "item_points"

    criterion_id: Mapped[str] = mapped_column(ForeignKey("criteria.id"), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    points: Mapped[float] = mapped_column(Float)
    changed_by: Mapped[str] = mapped_column(String(NAME_LENGTH))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
