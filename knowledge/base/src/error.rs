//! Domain errors. Each carries an [`ErrorCode`]; every transport (CLI exit code, HTTP status,
//! JSON-RPC error) maps the code, never the message.

use std::fmt;

/// What kind of failure happened, independent of any transport. Serialised as the stable string
/// `as_str` gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The caller sent something malformed or out of range.
    InvalidInput,
    /// The named collection, document or chunk does not exist.
    NotFound,
    /// The request conflicts with stored state (e.g. a collection built with another model).
    Conflict,
    /// A local resource (model assets, data directory) is missing or held by another process.
    Unavailable,
    /// No valid credentials (missing, forged, expired or revoked token or key; wrong password).
    Unauthorized,
    /// Valid credentials without the right to do this.
    Forbidden,
    /// Too many requests for now; retry after the time the error carries.
    RateLimited,
    /// The plan's allowance for the period is used up.
    QuotaExceeded,
    /// Every configured language-model provider failed.
    #[serde(rename = "upstream_error")]
    Upstream,
    /// Anything else: a bug or an I/O failure underneath.
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::Upstream => "upstream_error",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("{0}")]
    Upstream(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("lexical index: {0}")]
    Lexical(#[from] tantivy::TantivyError),
    #[error("vector store: {0}")]
    Vector(String),
    #[error("embedding: {0}")]
    Embedding(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidInput(_) => ErrorCode::InvalidInput,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::Unavailable(_) => ErrorCode::Unavailable,
            Error::Unauthorized(_) => ErrorCode::Unauthorized,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::RateLimited { .. } => ErrorCode::RateLimited,
            Error::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            Error::Upstream(_) => ErrorCode::Upstream,
            Error::Database(_)
            | Error::Migration(_)
            | Error::Lexical(_)
            | Error::Vector(_)
            | Error::Embedding(_)
            | Error::Io { .. }
            | Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// An error rebuilt from a code and message that crossed a channel (a chat's `error` event),
    /// so the transport maps it as it would the original.
    pub fn from_code(code: ErrorCode, message: String) -> Self {
        match code {
            ErrorCode::InvalidInput => Error::InvalidInput(message),
            ErrorCode::NotFound => Error::NotFound(message),
            ErrorCode::Conflict => Error::Conflict(message),
            ErrorCode::Unavailable => Error::Unavailable(message),
            ErrorCode::Unauthorized => Error::Unauthorized(message),
            ErrorCode::Forbidden => Error::Forbidden(message),
            ErrorCode::RateLimited => Error::RateLimited {
                message,
                retry_after_secs: 1,
            },
            ErrorCode::QuotaExceeded => Error::QuotaExceeded(message),
            ErrorCode::Upstream => Error::Upstream(message),
            ErrorCode::Internal => Error::Internal(message),
        }
    }

    /// What a remote caller is told: the message itself, except for internal errors, whose
    /// detail (paths, SQL, library messages) is for the server's log only.
    pub fn public_message(&self) -> String {
        if self.code() == ErrorCode::Internal {
            "an internal error occurred; the details are in the server's log".into()
        } else {
            self.to_string()
        }
    }

    /// Seconds a rate-limited caller should wait.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Internal(format!("background task failed: {e}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs blocking work (embedding, index commits, file parsing) off the async runtime.
pub async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_detail_stays_out_of_public_messages() {
        let io = Error::io(
            "opening /srv/secret/lariat.db",
            std::io::Error::other("disk"),
        );
        let internal = Error::Internal("SELECT password_hash FROM users failed".into());
        for e in [io, internal] {
            assert_eq!(e.code(), ErrorCode::Internal);
            let public = e.public_message();
            assert!(
                !public.contains("/srv") && !public.contains("SELECT"),
                "{public}"
            );
        }
        let mine = Error::NotFound("no conversation 7".into());
        assert_eq!(mine.public_message(), "no conversation 7");
    }

    #[test]
    fn codes_serialise_as_their_stable_strings() {
        use ErrorCode::*;
        for code in [
            InvalidInput,
            NotFound,
            Conflict,
            Unavailable,
            Unauthorized,
            Forbidden,
            RateLimited,
            QuotaExceeded,
            Upstream,
            Internal,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
