"""Tables of the job store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class JobRow(Base):
    """One summary job: its input, where it stands, and its result."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    # The `sub` of the token that created the job; rows from before owners
    # existed hold "" and so belong to nobody.
    owner: Mapped[str] = mapped_column(String(255), index=True, server_default="")
    title: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), index=True)
    source_text: Mapped[str] = mapped_column(Text)
    source_format: Mapped[str] = mapped_column(String(16))
    # Set for a job made from a URL: `load` fetches it and fills source_text.
    source_url: Mapped[str | None] = mapped_column(Text)
    max_sentences: Mapped[int] = mapped_column(Integer)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    progress_step: Mapped[str | None] = mapped_column(String(100))
    summary: Mapped[list[str] | None] = mapped_column(JSON)
    # Who wrote the summary, set when the job succeeds: `extractive` or
    # `llm`, and for `llm` the model's name.
    summarizer: Mapped[str | None] = mapped_column(String(16))
    summary_model: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    # When the `summary/requested` event first reached the executor; NULL
    # until then. The outbox row is what the relay works from; this copy
    # answers "was it sent" without a join.
    event_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Unused since the outbox (0003) keeps the last send error per event.
    event_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # Sequence number of the job's latest event (JobEventRow.seq).
    version: Mapped[int] = mapped_column(Integer, server_default="0")


class JobStepRow(Base):
    """A pipeline step that finished for a job; progress counts these rows.

    Keyed by (job, step) so that a step re-run after a lost answer counts once.
    """

    __tablename__ = "job_steps"

    job_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[str] = mapped_column(String(100), primary_key=True)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JobChunkRow(Base):
    """The sentences of one chunk, written by `split`, read by its step.

    Chunks live here rather than in step outputs so that the executor's
    per-run state stays small however long the document is.
    """

    __tablename__ = "job_chunks"

    job_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    sentences: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class JobEventRow(Base):
    """One change of a job as its event stream tells it: `status`,
    `progress`, `completed`, `failed` or `cancelled`.

    `seq` counts from 1 per job and is the SSE event id, so a client that
    reconnects with Last-Event-ID is sent exactly what it missed.
    """

    __tablename__ = "job_events"

    job_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    done: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    step: Mapped[str | None] = mapped_column(String(100))


class OutboxRow(Base):
    """An event the executor must receive, written in the same transaction
    as the change that calls for it, and sent by the relay (backend.events).

    `available_at` is when a relay may next take the row: now for a new row,
    the end of a relay's lease while it sends, or a backoff after a failed
    send. Once the row is sent it is when the reconciler (backend.reconcile)
    next asks the executor about the job's run.
    """

    __tablename__ = "outbox"

    # The event's id; for `summary/requested` the job's id, which is what
    # the executor de-duplicates on.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    available_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    # The ids the executor gave each send of this event, oldest first (the
    # newest few only): its REST API finds runs by these, not by `id`.
    executor_event_ids: Mapped[list[str] | None] = mapped_column(JSON)
