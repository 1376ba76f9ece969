"""Trial schedulers: which running trials go on (see :mod:`nas.core.scheduler` for the registry).

:func:`make_scheduler` turns the config's ``scheduler:`` section into a checked
:class:`~nas.runner.schedulers.base.Scheduler` (in the plan, before Ray starts);
its :meth:`~nas.runner.schedulers.base.Scheduler.build` gives the driver the Tune
scheduler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas.core.scheduler import NO_SCHEDULER, SCHEDULERS

if TYPE_CHECKING:
    from nas.runner.plan import SearchPlan
    from nas.runner.schedulers.base import Scheduler


def make_scheduler(plan: SearchPlan) -> Scheduler | None:
    """The checked scheduler of ``plan``'s config, or None (no section, or ``name: none``)."""
    section = plan.config.scheduler
    if section is None or section.name == NO_SCHEDULER:
        return None
    scheduler = SCHEDULERS.get(section.name).from_options(section.options)
    scheduler.check(plan)
    return scheduler


__all__ = ["make_scheduler"]
