"""The base of every error meant for the director's eyes: its message is the whole story."""


class TabmailError(Exception):
    """A failure with a clear, secret-free message; the CLI prints it as one line."""
