"""Use cases as functions and long-lived tasks, independent of any UI."""
