//! Parsing of the enums that have command-line names (datasets, models, modes), with one error
//! format that lists the accepted names.

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
