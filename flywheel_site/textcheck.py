"""Free text a person types into a page: which characters no field has a use for."""

import re

# PostgreSQL text cannot hold NUL at all (the driver raises), and the other control
# characters only disguise what a reviewer or an audit log reads. Tab, newline and carriage
# return stay.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CONTROL_REFUSED = "Text may not contain control characters (such as NUL)."


def has_control_characters(*texts: str | None) -> bool:
    return any(CONTROL_CHARACTERS.search(text or "") for text in texts)
