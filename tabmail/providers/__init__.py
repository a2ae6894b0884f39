"""Thin clients for third-party HTTP APIs (SendGrid), shared by backends/ and status/."""
