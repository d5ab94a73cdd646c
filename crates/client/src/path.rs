//! Building request URLs from a base URL and path segments. Every segment is
//! percent-encoded except the URL's unreserved characters (letters, digits,
//! `-`, `.`, `_`, `~`), so a name can never add a path level or a query.
//! Valid names (letters, digits, `.`, `_`, `-`) pass unchanged.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What a path segment may hold unencoded: RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `base` (without a trailing `/`) followed by each segment, encoded.
pub(crate) fn join(base: &str, segments: &[&str]) -> String {
    let mut url = base.to_owned();
    for segment in segments {
        url.push('/');
        url.extend(utf8_percent_encode(segment, SEGMENT));
    }
    url
}

/// A base URL checked and normalised: `http` or `https`, a host, no query
/// or fragment, no trailing `/` (so [`join`] can append segments). A bare
/// `host:port` is taken as `http://host:port`, since that is what people type.
pub(crate) fn normalise_base(base: &str) -> Result<String, String> {
    let with_scheme = if base.contains("://") {
        base.to_owned()
    } else {
        format!("http://{base}")
    };
    let url = reqwest::Url::parse(&with_scheme).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("the scheme is `{}`, not http", url.scheme()));
    }
    if url.host_str().is_none() {
        return Err("it has no host".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("it has a query or fragment".to_owned());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_pass_unchanged() {
        let url = join("http://h:1", &["v1", "topics", "orders.eu-west_1"]);
        assert_eq!(url, "http://h:1/v1/topics/orders.eu-west_1");
    }

    #[test]
    fn anything_else_is_encoded() {
        let url = join("http://h", &["v1", "topics", "a/b?c#d e%ü"]);
        assert_eq!(url, "http://h/v1/topics/a%2Fb%3Fc%23d%20e%25%C3%BC");
    }

    #[test]
    fn base_urls_are_normalised() {
        assert_eq!(
            normalise_base("http://127.0.0.1:9080/").unwrap(),
            "http://127.0.0.1:9080"
        );
        assert_eq!(
            normalise_base("http://h/prefix/").unwrap(),
            "http://h/prefix"
        );
        assert_eq!(
            normalise_base("127.0.0.1:9080").unwrap(),
            "http://127.0.0.1:9080"
        );
        assert!(normalise_base("http://").is_err());
        assert!(normalise_base("ftp://h").is_err());
        assert!(normalise_base("http://h/?a=1").is_err());
    }
}
