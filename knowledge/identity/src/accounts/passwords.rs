//! Passwords: the policy, argon2id hashing and constant-work verification.

use super::*;

pub(super) fn check_password(password: &str, email: &str, min_len: usize) -> Result<()> {
    let chars = password.chars().count();
    let problem = if chars < min_len {
        Some(format!("must be at least {min_len} characters"))
    } else if password.len() > MAX_PASSWORD_LEN {
        Some(format!("must be at most {MAX_PASSWORD_LEN} bytes"))
    } else if password.chars().all(|c| password.starts_with(c)) {
        Some("must not repeat one character".to_owned())
    } else if password.to_lowercase() == email || email.starts_with(&password.to_lowercase()) {
        Some("must not be your email address".to_owned())
    } else {
        None
    };
    match problem {
        Some(p) => Err(Error::InvalidInput(format!("the password {p}"))),
        None => Ok(()),
    }
}

pub(super) fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("hashing a password: {e}")))
}

/// Whether `password` is the one `hash` was made from. What is not a password hash (no
/// account, an account that signs in only through a provider, the operator's) is checked
/// against a dummy hash and fails: every answer costs one argon2 run, so its time tells nothing.
pub(super) fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let stored = hash
        .filter(|h| is_password_hash(h))
        .and_then(|h| PasswordHash::new(h).ok());
    let real = stored.is_some();
    let checked = stored.or_else(|| PasswordHash::new(dummy_hash()).ok());
    checked.is_some_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    }) && real
}

/// A hash to verify against when the account does not exist, so that the answer takes as long
/// as for a wrong password and does not reveal which emails are registered.
pub(super) fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a real password at all").unwrap_or_default())
}
