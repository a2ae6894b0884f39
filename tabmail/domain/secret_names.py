"""The secrets tabmail knows (kept in the OS keyring by store/secrets.py), each with the
environment variable accepted instead when no keyring can be used (TABMAIL_ and the name in
upper case, - as _). Adding a secret is adding its line here: the CLI, the settings dialog's
fields and the refusals all read this table. A module of its own: the CLI
lists the names without importing anything else."""

SECRET_NAMES: dict[str, str] = {
    "tabbycat-token": "TABMAIL_TABBYCAT_TOKEN",
    "smtp-password": "TABMAIL_SMTP_PASSWORD",
    "sendgrid-api-key": "TABMAIL_SENDGRID_API_KEY",
    "thread-key": "TABMAIL_THREAD_KEY",
    "imap-password": "TABMAIL_IMAP_PASSWORD",
    "db-password": "TABMAIL_DB_PASSWORD",
}
