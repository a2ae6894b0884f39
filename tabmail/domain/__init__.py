"""Pure dataclasses and enums. No I/O, no third-party imports."""
