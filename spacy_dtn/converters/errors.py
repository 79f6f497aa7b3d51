"""The one exception the converters raise for bad input.

Annotation files are written by hand and by many tools, so most conversion
failures are data problems rather than bugs. The message always says which
file, where in it (line number or annotation id), the offending value and
what to do, so a user can fix the corpus without reading a traceback.
"""
from pathlib import Path
from typing import Optional, Union


class ConversionError(ValueError):
    """Input that cannot be converted faithfully: the message says how to fix it."""

    def __init__(
        self,
        path: Union[str, Path],
        location: str,
        problem: str,
        value: Optional[object] = None,
        hint: str = "",
    ) -> None:
        self.path = Path(path)
        self.location = location
        self.problem = problem
        self.value = value
        self.hint = hint
        message = f"{self.path}, {location}: {problem}"
        if value is not None:
            message += f": {value!r}"
        if hint:
            message += f". {hint}"
        super().__init__(message)
