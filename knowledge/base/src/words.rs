//! Enums that travel as fixed words (SQL rows, JSON, forms, query strings): [`words!`] writes
//! their `as_str`, `parse` and `Display` from one table, so a variant and its word cannot drift
//! apart, and every `parse` error names the choices the same way.

/// "a", "a or b", "a, b or c": the choices an error message offers.
pub fn choices(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// `words!(Enum, "what it is", { Variant => "word", … })`: `as_str`, `parse` (an unknown word is
/// `InvalidInput` naming `what` and the choices) and `Display`. The enum's serde names must be the
/// same words (declare it `#[serde(rename_all = …)]` to match).
#[macro_export]
macro_rules! words {
    ($name:ident, $what:literal, { $($variant:ident => $word:literal),+ $(,)? }) => {
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }

            pub fn parse(s: &str) -> $crate::Result<Self> {
                match s {
                    $($word => Ok($name::$variant),)+
                    other => Err($crate::Error::InvalidInput(format!(
                        "unknown {} {other:?}: expected {}",
                        $what,
                        $crate::words::choices(&[$($word),+])
                    ))),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::choices;

    #[test]
    fn choices_read_as_a_sentence() {
        assert_eq!(choices(&[]), "");
        assert_eq!(choices(&["public"]), "public");
        assert_eq!(choices(&["public", "private"]), "public or private");
        assert_eq!(
            choices(&["user", "curator", "admin"]),
            "user, curator or admin"
        );
    }
}
