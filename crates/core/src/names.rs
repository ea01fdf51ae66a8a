//! The enums that have command-line names (datasets, models, optimizers, modes): parsing with
//! one error format that lists the accepted names, and display by name.

/// The element of `all` whose `name` is `s`; otherwise an error naming `what` and listing the
/// accepted names.
pub(crate) fn parse_name<T: Copy>(
    s: &str,
    all: &[T],
    name: fn(T) -> &'static str,
    what: &str,
) -> Result<T, String> {
    all.iter().copied().find(|&item| name(item) == s).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|&item| name(item)).collect();
        format!("unknown {what} '{s}': expected one of {}", names.join(", "))
    })
}

/// Implements `Display` (the name), `FromStr` (by name, with [`parse_name`]'s error) and serde
/// (as the name) for an enum with an `ALL` constant and a `name()` method; `$what` names the
/// kind in errors.
macro_rules! named_enum {
    ($type:ty, $what:literal) => {
        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $type {
            type Err = String;

            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                $crate::names::parse_name(s, &<$type>::ALL, <$type>::name, $what)
            }
        }

        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                name.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use named_enum;
