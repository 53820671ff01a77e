"""The budget table of the server (revision `0005`), on the store's `Base`.

Kept apart from `governor_server.models` so the budget service owns its schema. Importing
`governor_server` (as the Alembic environment does, through `governor_server.models`) loads the
app, its routers and so this table, so autogenerate and the migration tests see it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from governor.storage.models import Base, UTCDateTime

__all__ = ["ORG_DEFAULT", "BudgetLimitRow"]

#: The `user_id` of an organisation's default limit (the limit of users without their own).
ORG_DEFAULT = "*"


class BudgetLimitRow(Base):
    """A monthly budget limit of one user of an organisation, in micro-units of `currency`.

    `user_id` `*` is the organisation's default for users without their own limit; with neither,
    the bundle's `budget.default_monthly_limit` applies.
    """

    __tablename__ = "governor_budget_limits"

    org_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("governor_orgs.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    monthly_limit: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
