//! Keeping secrets out of every message: passwords in URLs, SAS signatures, account keys and
//! shared access keys are replaced by `***` before a store URL or an error reaches the terminal.
//!
//! The functions work on free text, not only on well-formed URLs, because the text to clean is
//! often an error message that quotes a URL or a connection string somewhere in the middle.

/// Names of `key=value` pairs (URL query parameters or connection-string fields, any case)
/// whose values are secret.
const SECRET_KEYS: &[&str] = &[
    "sig",
    "password",
    "accountkey",
    "sharedaccesskey",
    "sharedaccesssignature",
    "client_secret",
    "access_token",
];

/// A store URL or connection string fit for messages: the password of every
/// `scheme://user:password@host` and the value of every secret `key=value` pair (`sig=`,
/// `password=`, `AccountKey=`, `SharedAccessKey=`, `SharedAccessSignature=`) replaced by `***`.
///
/// ```
/// use eventhubs_store_cli::redact::redact_url;
///
/// assert_eq!(redact_url("postgres://app:s3cret@db/events"), "postgres://app:***@db/events");
/// assert_eq!(
///     redact_url("https://acct.blob.core.windows.net/c?sv=2022-11-02&sig=abc%2B"),
///     "https://acct.blob.core.windows.net/c?sv=2022-11-02&sig=***"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    redact_text(url)
}

/// Redacts every secret found anywhere in `text` (see [`redact_url`]).
pub fn redact_text(text: &str) -> String {
    redact_key_values(&redact_user_info(text))
}

/// Replaces the password in every `scheme://user:password@` of `text`.
fn redact_user_info(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority ends at the first '/', '?', '#' or white space; its user info at the
        // last '@' inside it (a password may itself contain '@').
        let end = after
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at_sign) => {
                let user_info = &authority[..at_sign];
                match user_info.find(':') {
                    Some(colon) => {
                        out.push_str(&user_info[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(user_info),
                }
                out.push_str(&authority[at_sign..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Replaces the value of every secret `key=value` pair of `text`. A key starts the text or
/// follows one of `?&; "'`; the value ends at `&`, `;`, white space or a quote.
fn redact_key_values(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied_to = 0;
    while i < text.len() {
        let at_key_start = i == 0 || matches!(bytes[i - 1], b'?' | b'&' | b';' | b' ' | b'"' | b'\'' | b',');
        if at_key_start
            && let Some(key) = SECRET_KEYS
                .iter()
                .find(|k| lower[i..].starts_with(*k) && lower[i + k.len()..].starts_with('='))
        {
            let value_start = i + key.len() + 1;
            let value_end = text[value_start..]
                .find(|c: char| c == '&' || c == ';' || c == '"' || c == '\'' || c.is_whitespace())
                .map_or(text.len(), |n| value_start + n);
            out.push_str(&text[copied_to..value_start]);
            out.push_str("***");
            copied_to = value_end;
            i = value_end;
            continue;
        }
        i += text[i..].chars().next().map_or(1, char::len_utf8);
    }
    out.push_str(&text[copied_to..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_hidden() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/events"),
            "postgres://app:***@db:5432/events"
        );
        assert_eq!(
            redact_url("postgresql://app:p@ss@db/x?schema=a"),
            "postgresql://app:***@db/x?schema=a"
        );
        assert_eq!(
            redact_url("redis://:hunter2@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(
            redact_url("rediss://user:pw@h1,h2:6380"),
            "rediss://user:***@h1,h2:6380"
        );
        assert_eq!(
            redact_url("redis+cluster://u:pw@h1:7000,h2:7001?prefix=x"),
            "redis+cluster://u:***@h1:7000,h2:7001?prefix=x"
        );
        assert_eq!(redact_url("postgres://app@db/events"), "postgres://app@db/events");
        assert_eq!(
            redact_url("postgres://db/events?user=app&password=s3cret&sslmode=require"),
            "postgres://db/events?user=app&password=***&sslmode=require"
        );
    }

    #[test]
    fn sas_signatures_are_hidden() {
        let url = "https://acct.blob.core.windows.net/cont?sv=2022-11-02&ss=b&sig=AbC%2Fdef%3D&se=2030";
        let r = redact_url(url);
        assert!(!r.contains("AbC"), "{r}");
        assert_eq!(
            r,
            "https://acct.blob.core.windows.net/cont?sv=2022-11-02&ss=b&sig=***&se=2030"
        );
        assert_eq!(redact_url("https://a/c?SIG=x"), "https://a/c?SIG=***");
    }

    #[test]
    fn connection_string_keys_are_hidden() {
        let cs = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0a2V5==;EndpointSuffix=core.windows.net";
        let r = redact_url(cs);
        assert!(!r.contains("c2VjcmV0a2V5"), "{r}");
        assert!(
            r.contains("AccountName=acct;AccountKey=***;EndpointSuffix"),
            "{r}"
        );
        let eh = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=abc123=;EntityPath=hub";
        let r = redact_url(eh);
        assert!(!r.contains("abc123"), "{r}");
        assert!(r.contains("SharedAccessKeyName=root"), "{r}");
        let sas = "BlobEndpoint=https://a.blob.core.windows.net;SharedAccessSignature=sv=1&sig=zzz";
        let r = redact_url(sas);
        assert!(!r.contains("zzz"), "{r}");
    }

    #[test]
    fn secrets_inside_error_text_are_hidden() {
        let e = "error connecting to postgres://a:topsecret@h/db: refused; blob https://x/c?sig=qq failed";
        let r = redact_text(e);
        assert!(!r.contains("topsecret") && !r.contains("qq"), "{r}");
        assert!(r.contains("refused"), "{r}");
        // Words merely containing a key name are left alone.
        assert_eq!(redact_text("design=ok mysig=1"), "design=ok mysig=1");
        assert_eq!(
            redact_text("no secrets here: ünïcode ✓"),
            "no secrets here: ünïcode ✓"
        );
    }
}
