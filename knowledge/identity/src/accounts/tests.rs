use super::*;

#[test]
fn emails_are_normalised_and_checked() {
    assert_eq!(
        normalize_email("  Ann.Lee@Example.COM ").unwrap(),
        "ann.lee@example.com"
    );
    for bad in [
        "",
        "ann",
        "ann@",
        "@x.org",
        "ann@localhost",
        "a b@x.org",
        "a@@x.org",
        "a@x..org",
    ] {
        assert!(normalize_email(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn password_policy() {
    let email = "ann@example.com";
    assert!(check_password("short", email, 10).is_err());
    assert!(check_password("aaaaaaaaaaaa", email, 10).is_err());
    assert!(check_password("ann@example.com", email, 10).is_err());
    assert!(check_password(&"x".repeat(300), email, 10).is_err());
    assert!(check_password("correct horse battery", email, 10).is_ok());
}

#[test]
fn passwords_hash_with_argon2id_and_verify() {
    let hash = hash_password("correct horse battery").unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(verify_password("correct horse battery", Some(&hash)));
    assert!(!verify_password("correct horse batterz", Some(&hash)));
    assert!(!verify_password("x", Some("not a hash")));
    // no account, or one without a password: checked against the dummy hash, never a match
    // (not even with the dummy's own password)
    for stored in [None, Some("!sso"), Some("!")] {
        assert!(!verify_password("not a real password at all", stored));
    }
}
