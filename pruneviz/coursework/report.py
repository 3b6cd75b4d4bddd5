"""How every check speaks: one line for a pass, the problems listed for a fail."""
from __future__ import annotations

from collections.abc import Callable


def report(name: str, problems: list[str]) -> bool:
    """Print ``✓ name`` or ``✗ name`` with the problems; return whether it passed."""
    if problems:
        print(f"✗ {name}: {len(problems)} problem(s)")
        for problem in problems:
            print(f"  - {problem}")
        return False
    print(f"✓ {name}: all checks passed")
    return True


def call(fn: Callable, *args, problems: list[str], case: str, **kwargs):
    """Call a student's function; a raised exception becomes a problem, not a crash of the check."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        problems.append(f"{case}: not implemented yet (the function still raises NotImplementedError)")
    except Exception as err:  # any error in student code is reported, with its type and message
        problems.append(f"{case}: raised {type(err).__name__}: {err}")
    return None
