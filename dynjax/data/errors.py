"""The one exception type for bad input data."""


class DataError(ValueError):
    """Bad input data; the message names the file (or source) and the problem."""

    def __init__(self, source: object, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{source}: {problem}")


def preview(names, limit: int = 5) -> str:
    """Short, readable list of names for error messages."""
    names = [str(n) for n in names]
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} ... ({len(names)} in all)"
