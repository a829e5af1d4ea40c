//! Outgoing mail: each message is rendered from a template (built in, or the operator's in
//! `mail.templates_dir`), queued in SQL ([`MailStore`]) and delivered by a background sender
//! ([`Mail::run`]) over SMTP with retries and backoff. Without SMTP configured the sender logs
//! each message instead, links included, so a self-hoster without mail can still finish a reset.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::Notify;

use crate::config::{MailConfig, MailTls};
use crate::store::{MailStore, QueuedMail};
use base::error::{Error, Result};
use base::types::now_ms;

/// A delivery attempt that fails is retried after 30 s, 1 min, 2 min… (at most an hour apart);
/// after this many attempts the message is given up.
const MAX_ATTEMPTS: i64 = 8;
/// How long a claimed message is left to its sender before another may try it.
const LEASE_MS: i64 = 60_000;

/// The messages lariat sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// A password reset link (`{{link}}`, valid `{{minutes}}` minutes).
    Reset,
    /// A notice that the account's password was changed.
    PasswordChanged,
    /// A link proving the account's address (`{{link}}`, valid `{{hours}}` hours).
    Verify,
    /// A link confirming a new address for the account, sent to that address (`{{link}}`,
    /// `{{hours}}`, `{{old_email}}`).
    EmailChange,
    /// A notice to the old address that the account now uses another (`{{new_email}}`).
    EmailChanged,
    /// The user's data export can be downloaded (`{{link}}`, for `{{days}}` days).
    ExportReady,
    /// What a proof of the mailbox or a reset took away from the account (`{{removed}}`, after
    /// `{{event}}`).
    AccessRemoved,
    /// Someone signed up with an address that already has an account (`{{link}}` to reset).
    SignupTaken,
    /// A subscription's payment failed (`{{plan}}`, `{{amount}}`, `{{link}}` to the billing
    /// page, `{{days}}` of grace).
    PaymentFailed,
}

impl Template {
    fn name(self) -> &'static str {
        match self {
            Template::Reset => "reset",
            Template::PasswordChanged => "password_changed",
            Template::Verify => "verify",
            Template::EmailChange => "email_change",
            Template::EmailChanged => "email_changed",
            Template::ExportReady => "export_ready",
            Template::PaymentFailed => "payment_failed",
            Template::AccessRemoved => "access_removed",
            Template::SignupTaken => "signup_taken",
        }
    }

    fn subject(self) -> &'static str {
        match self {
            Template::Reset => "Reset your Lariat password",
            Template::PasswordChanged => "Your Lariat password was changed",
            Template::Verify => "Confirm your e-mail address for Lariat",
            Template::EmailChange => "Confirm your new e-mail address for Lariat",
            Template::EmailChanged => "Your Lariat account's e-mail address was changed",
            Template::ExportReady => "Your Lariat data export is ready",
            Template::PaymentFailed => "Your Lariat payment failed",
            Template::AccessRemoved => "Sign-ins removed from your Lariat account",
            Template::SignupTaken => "Someone tried to sign up to Lariat with your address",
        }
    }

    fn built_in(self) -> (&'static str, &'static str) {
        match self {
            Template::Reset => (
                "Someone (we hope you) asked to reset the password of the Lariat account \
                 {{email}}.\n\nOpen this link within {{minutes}} minutes to choose a new one:\n\n\
                 {{link}}\n\nThe link works once. If you did not ask, ignore this message: your \
                 password stays as it is.\n",
                "<p>Someone (we hope you) asked to reset the password of the Lariat account \
                 {{email}}.</p><p><a href=\"{{link}}\">Choose a new password</a> within \
                 {{minutes}} minutes (the link works once).</p><p>If you did not ask, ignore \
                 this message: your password stays as it is.</p>",
            ),
            Template::PasswordChanged => (
                "The password of the Lariat account {{email}} was just changed, and every \
                 session signed in with the old one was signed out.\n\nIf this was not you, \
                 reset your password now: {{link}}\n",
                "<p>The password of the Lariat account {{email}} was just changed, and every \
                 session signed in with the old one was signed out.</p><p>If this was not you, \
                 <a href=\"{{link}}\">reset your password now</a>.</p>",
            ),
            Template::Verify => (
                "Welcome to Lariat. Open this link within {{hours}} hours to confirm that \
                 {{email}} is your address:\n\n{{link}}\n\nIf you did not sign up, ignore this \
                 message.\n",
                "<p>Welcome to Lariat.</p><p><a href=\"{{link}}\">Confirm that {{email}} is \
                 your address</a> within {{hours}} hours.</p><p>If you did not sign up, ignore \
                 this message.</p>",
            ),
            Template::EmailChange => (
                "The Lariat account {{old_email}} asked to use {{email}} from now on. Open this \
                 link within {{hours}} hours to confirm:\n\n{{link}}\n\nIf you did not ask, \
                 ignore this message: nothing changes.\n",
                "<p>The Lariat account {{old_email}} asked to use {{email}} from now on.</p>\
                 <p><a href=\"{{link}}\">Confirm the new address</a> within {{hours}} hours.</p>\
                 <p>If you did not ask, ignore this message: nothing changes.</p>",
            ),
            Template::EmailChanged => (
                "The Lariat account that used {{email}} now uses {{new_email}}; mail about it \
                 goes there.\n\nIf this was not you, write to the server's administrator at \
                 once.\n",
                "<p>The Lariat account that used {{email}} now uses {{new_email}}; mail about it \
                 goes there.</p><p>If this was not you, write to the server's administrator at \
                 once.</p>",
            ),
            Template::ExportReady => (
                "The export of everything Lariat holds about {{email}} is ready. Download it \
                 from your account page within {{days}} days:\n\n{{link}}\n",
                "<p>The export of everything Lariat holds about {{email}} is ready.</p><p>\
                 <a href=\"{{link}}\">Download it from your account page</a> within {{days}} \
                 days.</p>",
            ),
            Template::PaymentFailed => (
                "The payment of {{amount}} for the {{plan}} plan of the Lariat account {{email}} \
                 failed. The plan stays for {{days}} days while the card is retried; update the \
                 payment method on the billing page to keep it:\n\n{{link}}\n",
                "<p>The payment of {{amount}} for the {{plan}} plan of the Lariat account \
                 {{email}} failed. The plan stays for {{days}} days while the card is retried.\
                 </p><p><a href=\"{{link}}\">Update the payment method</a> to keep it.</p>",
            ),
            Template::AccessRemoved => (
                "After {{event}} of the Lariat account {{email}}, everything that could sign in \
                 to it before was removed: {{removed}}.\n\nIf some of it was yours, sign in and \
                 make it again. If you did not expect any of it, tell the server's \
                 administrator.\n",
                "<p>After {{event}} of the Lariat account {{email}}, everything that could sign \
                 in to it before was removed: {{removed}}.</p><p>If some of it was yours, sign \
                 in and make it again. If you did not expect any of it, tell the server's \
                 administrator.</p>",
            ),
            Template::SignupTaken => (
                "Someone (perhaps you) tried to open a Lariat account with {{email}}, which \
                 already has one; nothing was changed.\n\nIf it was you, sign in. If you forgot \
                 the password, choose a new one here:\n\n{{link}}\n\nIf it was not you, ignore \
                 this message.\n",
                "<p>Someone (perhaps you) tried to open a Lariat account with {{email}}, which \
                 already has one; nothing was changed.</p><p>If it was you, sign in. If you \
                 forgot the password, <a href=\"{{link}}\">choose a new one</a>.</p><p>If it \
                 was not you, ignore this message.</p>",
            ),
        }
    }

    const ALL: [Template; 9] = [
        Template::SignupTaken,
        Template::AccessRemoved,
        Template::PaymentFailed,
        Template::ExportReady,
        Template::Reset,
        Template::PasswordChanged,
        Template::Verify,
        Template::EmailChange,
        Template::EmailChanged,
    ];
}

/// Hands a message to whatever delivers it.
#[async_trait]
trait Transport: Send + Sync {
    async fn send(&self, mail: &QueuedMail) -> Result<()>;
}

/// SMTP, through lettre (its connection pool, rustls).
struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

#[async_trait]
impl Transport for Smtp {
    async fn send(&self, mail: &QueuedMail) -> Result<()> {
        let to: Mailbox = mail
            .recipient
            .parse()
            .map_err(|e| Error::InvalidInput(format!("recipient {}: {e}", mail.recipient)))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .multipart(MultiPart::alternative_plain_html(
                mail.text_body.clone(),
                mail.html_body.clone(),
            ))
            .map_err(|e| Error::Internal(format!("building a message: {e}")))?;
        self.transport
            .send(message)
            .await
            .map_err(|e| Error::Upstream(format!("the mail server refused: {e}")))?;
        Ok(())
    }
}

/// No SMTP configured: the message is logged, clearly marked, links and all.
struct LogOnly;

#[async_trait]
impl Transport for LogOnly {
    async fn send(&self, mail: &QueuedMail) -> Result<()> {
        tracing::warn!(
            to = %mail.recipient,
            subject = %mail.subject,
            "MAIL NOT SENT (no [mail] smtp_host configured); its text follows:\n{}",
            mail.text_body
        );
        Ok(())
    }
}

pub struct Mail {
    store: Arc<dyn MailStore>,
    transport: Box<dyn Transport>,
    /// Text and HTML bodies by template, the operator's where given.
    templates: Vec<(Template, String, String)>,
    public_url: String,
    wake: Notify,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// `text` with each `{{name}}` replaced by its value, HTML-escaped when `html`.
fn fill(text: &str, values: &[(&str, &str)], html: bool) -> String {
    let mut out = text.to_owned();
    for (name, value) in values {
        let value = if html {
            value
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
                .replace('\'', "&#39;")
        } else {
            (*value).to_owned()
        };
        out = out.replace(&format!("{{{{{name}}}}}"), &value);
    }
    out
}

impl Mail {
    pub fn new(config: &MailConfig, store: Arc<dyn MailStore>) -> Result<Self> {
        let public_url = config.public_url.trim_end_matches('/').to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(Error::InvalidInput(format!(
                "mail.public_url must be the http(s):// address users reach the app at, not {public_url:?}"
            )));
        }
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| Error::InvalidInput(format!("mail.from {:?}: {e}", config.from)))?;
        let transport: Box<dyn Transport> = match &config.smtp_host {
            None => Box::new(LogOnly),
            Some(host) => {
                let builder = match config.tls {
                    MailTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
                    MailTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                        .map_err(|e| Error::InvalidInput(format!("mail.smtp_host: {e}")))?,
                    MailTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                        .map_err(|e| Error::InvalidInput(format!("mail.smtp_host: {e}")))?,
                };
                let mut builder = builder
                    .port(config.smtp_port)
                    .timeout(Some(Duration::from_secs(20)));
                if let (Some(user), Some(password)) = (&config.username, &config.password) {
                    builder = builder
                        .credentials(Credentials::new(user.clone(), password.expose().to_owned()));
                }
                Box::new(Smtp {
                    transport: builder.build(),
                    from,
                })
            }
        };
        let mut templates = Vec::new();
        for template in Template::ALL {
            let (text, html) = template.built_in();
            let read = |ext: &str, built_in: &str| -> Result<String> {
                let Some(dir) = &config.templates_dir else {
                    return Ok(built_in.to_owned());
                };
                let path = dir.join(format!("{}.{ext}", template.name()));
                match std::fs::read_to_string(&path) {
                    Ok(text) => Ok(text),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(built_in.to_owned()),
                    Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
                }
            };
            templates.push((template, read("txt", text)?, read("html", html)?));
        }
        Ok(Self {
            store,
            transport,
            templates,
            public_url,
            wake: Notify::new(),
        })
    }

    /// The app's address for `path` (which starts with `/`), for links in mail.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }

    /// Renders `template` for `to`, a message about the account `user_id` (when known), and
    /// queues it; the sender delivers it soon after.
    pub async fn send(
        &self,
        user_id: Option<&str>,
        to: &str,
        template: Template,
        values: &[(&str, &str)],
    ) -> Result<()> {
        let (_, text, html) = self
            .templates
            .iter()
            .find(|(t, ..)| *t == template)
            .ok_or_else(|| Error::Internal(format!("no template {}", template.name())))?;
        let mut values = values.to_vec();
        values.push(("email", to));
        self.store
            .enqueue_mail(&QueuedMail {
                id: uuid::Uuid::new_v4().to_string(),
                user_id: user_id.map(str::to_owned),
                recipient: to.to_owned(),
                subject: template.subject().to_owned(),
                text_body: fill(text, &values, false),
                html_body: fill(html, &values, true),
                attempts: 0,
                next_attempt_at: now_ms(),
            })
            .await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Delivers the messages due now, each claimed first; returns how many were delivered.
    pub async fn deliver_due(&self) -> Result<usize> {
        let now = now_ms();
        let mut delivered = 0;
        for mail in self.store.due_mail(now, 20).await? {
            if !self.store.claim_mail(&mail, now + LEASE_MS).await? {
                continue;
            }
            let attempt = mail.attempts + 1;
            match self.transport.send(&mail).await {
                Ok(()) => {
                    self.store.mail_sent(&mail.id).await?;
                    delivered += 1;
                }
                Err(e) => {
                    let retry_at = (attempt < MAX_ATTEMPTS).then(|| {
                        let wait = (30_000i64 << (attempt - 1).min(7)).min(3_600_000);
                        now_ms() + wait
                    });
                    tracing::warn!(
                        to = %mail.recipient,
                        attempt,
                        gave_up = retry_at.is_none(),
                        error = %e,
                        "a mail could not be delivered"
                    );
                    self.store
                        .mail_failed(&mail.id, &e.to_string(), retry_at)
                        .await?;
                }
            }
        }
        Ok(delivered)
    }

    /// The background sender: delivers what is due whenever a message is queued, and every few
    /// seconds for retries (and for what other servers queued). Runs until its task is dropped.
    pub async fn run(self: Arc<Self>) {
        loop {
            if let Err(e) = self.deliver_due().await {
                tracing::warn!(error = %e, "the mail sender could not read the outbox");
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), self.wake.notified()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base::sql::SqlStore;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Refuses the first `fail` messages, then accepts; counts every attempt.
    struct Flaky {
        fail: usize,
        attempts: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl Transport for Flaky {
        async fn send(&self, _: &QueuedMail) -> Result<()> {
            let n = self.attempts.fetch_add(1, Ordering::SeqCst);
            if n < self.fail {
                Err(Error::Upstream("421 try again later".into()))
            } else {
                Ok(())
            }
        }
    }

    async fn mail(dir: &std::path::Path, fail: usize) -> (Mail, Arc<SqlStore>, Arc<AtomicUsize>) {
        let store = Arc::new(SqlStore::open_sqlite(&dir.join("t.db")).await.unwrap());
        let config = MailConfig {
            templates_dir: Some(dir.to_owned()),
            ..MailConfig::default()
        };
        std::fs::write(dir.join("reset.txt"), "Yours: {{link}} for {{email}}").unwrap();
        let mut mail = Mail::new(&config, store.clone()).unwrap();
        let attempts = Arc::new(AtomicUsize::new(0));
        mail.transport = Box::new(Flaky {
            fail,
            attempts: attempts.clone(),
        });
        (mail, store, attempts)
    }

    #[tokio::test]
    async fn a_refused_message_is_retried_later_and_templates_can_be_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (mail, store, attempts) = mail(dir.path(), 1).await;
        mail.send(
            None,
            "ann@example.com",
            Template::Reset,
            &[("link", "http://x/r?t=<1>")],
        )
        .await
        .unwrap();
        let queued = store.due_mail(now_ms(), 10).await.unwrap();
        assert_eq!(
            queued[0].text_body,
            "Yours: http://x/r?t=<1> for ann@example.com"
        );
        assert!(
            queued[0].html_body.contains("http://x/r?t=&lt;1&gt;"),
            "built-in, escaped"
        );

        // refused: not sent, due again in 30 s, not before
        assert_eq!(mail.deliver_due().await.unwrap(), 0);
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        assert!(store.due_mail(now_ms(), 10).await.unwrap().is_empty());
        let later = store.due_mail(now_ms() + 31_000, 10).await.unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].attempts, 1);

        // a second sender cannot claim what the first has
        assert!(
            store
                .claim_mail(&later[0], now_ms() + LEASE_MS)
                .await
                .unwrap()
        );
        assert!(
            !store
                .claim_mail(&later[0], now_ms() + LEASE_MS)
                .await
                .unwrap()
        );
        store.mail_sent(&later[0].id).await.unwrap();
        assert!(store.due_mail(i64::MAX, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_message_refused_every_time_is_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let (mail, store, attempts) = mail(dir.path(), usize::MAX).await;
        mail.send(
            None,
            "bo@example.com",
            Template::PasswordChanged,
            &[("link", "l")],
        )
        .await
        .unwrap();
        for _ in 0..MAX_ATTEMPTS {
            // make it due again, as time passing would
            let due = store.due_mail(i64::MAX, 10).await.unwrap();
            let Some(m) = due.first() else { break };
            store
                .mail_failed(&m.id, "wait over", Some(0))
                .await
                .unwrap();
            mail.deliver_due().await.unwrap();
        }
        assert_eq!(attempts.load(Ordering::SeqCst), MAX_ATTEMPTS as usize);
        assert!(
            store.due_mail(i64::MAX, 10).await.unwrap().is_empty(),
            "given up"
        );
    }

    #[tokio::test]
    async fn bad_settings_are_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn MailStore> = Arc::new(
            SqlStore::open_sqlite(&dir.path().join("t.db"))
                .await
                .unwrap(),
        );
        for config in [
            MailConfig {
                public_url: "javascript:alert(1)".into(),
                ..MailConfig::default()
            },
            MailConfig {
                from: "not an address".into(),
                ..MailConfig::default()
            },
        ] {
            assert_eq!(
                Mail::new(&config, store.clone()).unwrap_err().code(),
                base::ErrorCode::InvalidInput
            );
        }
    }
}
