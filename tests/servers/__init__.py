"""Real servers on loopback for tests and benchmarks: SMTP (aiosmtpd), SendGrid, Tabbycat."""
