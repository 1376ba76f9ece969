"""Base schema: studies, shared architectures, trials, values, metrics, artifacts.

Revision ID: 0001_base
Revises:
Create Date: 2025-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from nas.store.schema import UTCDateTime

revision = "0001_base"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("space", sa.String(128), nullable=False),
        sa.Column("space_options", sa.Text, nullable=False),
        sa.Column("objectives", sa.Text, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("next_trial_number", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_studies"),
        sa.UniqueConstraint("name", name="uq_studies_name"),
    )
    op.create_table(
        "architectures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("space", sa.String(128), nullable=False),
        sa.Column("canonical_key", sa.String(128), nullable=False),
        sa.Column("genotype", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_architectures"),
        sa.UniqueConstraint("space", "canonical_key", name="uq_architectures_space_canonical_key"),
    )
    op.create_table(
        "trials",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("study_id", sa.Integer, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("architecture_id", sa.Integer, nullable=False),
        sa.Column("genotype", sa.Text, nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("budget", sa.Double, nullable=True),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("user_attrs", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("node", sa.String(255), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_trials"),
        sa.ForeignKeyConstraint(
            ["study_id"], ["studies.id"], name="fk_trials_study_id_studies", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["architecture_id"], ["architectures.id"], name="fk_trials_architecture_id_architectures"
        ),
        sa.UniqueConstraint("study_id", "number", name="uq_trials_study_id_number"),
    )
    op.create_index("ix_trials_study_id_state_number", "trials", ["study_id", "state", "number"])
    op.create_index("ix_trials_architecture_id_state", "trials", ["architecture_id", "state"])
    op.create_table(
        "trial_values",
        sa.Column("trial_id", sa.Integer, nullable=False),
        sa.Column("objective", sa.String(128), nullable=False),
        sa.Column("study_id", sa.Integer, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("score", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("trial_id", "objective", name="pk_trial_values"),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], name="fk_trial_values_trial_id_trials", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["study_id"], ["studies.id"], name="fk_trial_values_study_id_studies", ondelete="CASCADE"
        ),
    )
    op.create_index(
        "ix_trial_values_study_id_objective_score_trial_id",
        "trial_values",
        ["study_id", "objective", "score", "trial_id"],
    )
    op.create_table(
        "trial_metrics",
        sa.Column("trial_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("value", sa.Double, nullable=True),
        sa.PrimaryKeyConstraint("trial_id", "name", "step", name="pk_trial_metrics"),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], name="fk_trial_metrics_trial_id_trials", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("trial_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_artifacts"),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], name="fk_artifacts_trial_id_trials", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_artifacts_trial_id", "artifacts", ["trial_id"])


def downgrade() -> None:
    for table in ("artifacts", "trial_metrics", "trial_values", "trials", "architectures", "studies"):
        op.drop_table(table)
