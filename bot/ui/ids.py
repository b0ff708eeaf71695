"""Block Kit identifiers, in one place so renderers and listeners agree."""

from enum import StrEnum


class View(StrEnum):
    START = "incident_start"
    CLOSE = "incident_close"
    STATUS = "incident_status"


class Action(StrEnum):
    RETRY_START = "incident_retry_start"
    ADD_TASK_ROW = "close_add_task_row"
    TASK_DONE = "task_done"
    TASK_SNOOZE_DAY = "task_snooze_day"
    TASK_SNOOZE_WEEK = "task_snooze_week"
    TAKE_COMMAND = "incident_take_command"
    OPEN_STATUS_FORM = "incident_open_status_form"
    OPEN_START_FORM = "incident_open_start_form"


class Block(StrEnum):
    TITLE = "title"
    SEVERITY = "severity"
    DESCRIPTION = "description"
    PRIVATE = "private"
    IMPACT = "impact"
    IMPACT_START = "impact_start"
    IMPACT_END = "impact_end"
    ROOT_CAUSE = "root_cause"
    RESOLUTION = "resolution"
    IMPROVEMENTS = "improvements"
    TASK_ACTIONS = "task_actions"
    STATUS = "status"
    STATUS_TEXT = "status_text"


def task_block(field: str, row: int) -> str:
    """Block id of one field of one task row in the close modal, e.g. task_owner_2."""
    return f"task_{field}_{row}"


FIELD = "value"  # every input element uses this action id inside its own block
