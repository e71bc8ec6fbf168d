"""Sending the password-reset code: SMTP, or the log in development."""

import asyncio
import logging
import smtplib
from email.message import EmailMessage
from typing import Protocol

from socialhub.auth.settings import AuthSettings, MailBackend
from socialhub.kit.settings import Environment

log = logging.getLogger(__name__)


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


class SmtpMailer:
    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings

    async def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        await asyncio.to_thread(self._deliver, message)

    def _deliver(self, message: EmailMessage) -> None:
        s = self.settings
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=10) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_username and s.smtp_password:
                smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
            smtp.send_message(message)


class LogMailer:
    async def send(self, to: str, subject: str, body: str) -> None:
        log.info("mail to %s: %s\n%s", to, subject, body)


def create_mailer(settings: AuthSettings) -> Mailer:
    if settings.mail_backend is MailBackend.LOG:
        if settings.socialhub_env is Environment.PRODUCTION:
            raise ValueError("MAIL_BACKEND=log would write reset codes to logs in production")
        return LogMailer()
    return SmtpMailer(settings)
