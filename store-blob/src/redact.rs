//! Keeping secrets out of `Debug`, logs and errors: the account key type, URL and text
//! redaction, and an error wrapper that carries only redacted text.

use std::fmt;

use url::Url;

/// Query parameters of a SAS token whose values are secret (the signature) or identify the
/// signing key. Everything else in a SAS (permissions, expiry) is harmless but is hidden too:
/// a redacted URL shows only which parameters were present.
const SECRET_MARKERS: [&str; 3] = ["sig=", "accountkey=", "sharedaccesssignature="];

/// A storage account key: the decoded bytes, never printed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct AccountKey(Vec<u8>);

impl AccountKey {
    /// Wraps decoded key bytes.
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        AccountKey(bytes)
    }

    /// The key bytes, for HMAC only.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccountKey(<redacted>)")
    }
}

/// A URL fit for messages: scheme, host, port and path; a query (a SAS token) is replaced by
/// the names of its parameters with every value hidden.
pub(crate) fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    // A password in the authority (never used by storage, but never shown either).
    let _ = shown.set_password(None);
    let mut out = shown.to_string();
    if url.query().is_some() {
        let names: Vec<String> = url
            .query_pairs()
            .map(|(k, _)| format!("{k}=<redacted>"))
            .collect();
        out.push('?');
        out.push_str(&names.join("&"));
    }
    out
}

/// Hides the value after every `sig=`, `AccountKey=` and `SharedAccessSignature=` (any case) in
/// free text such as an HTTP client's error message that may quote a request URL.
pub(crate) fn redact_text(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let marker = SECRET_MARKERS
            .iter()
            .find(|m| lower[i..].starts_with(**m) && is_word_start(&lower, i));
        match marker {
            Some(m) => {
                out.push_str(&text[i..i + m.len()]);
                out.push_str("<redacted>");
                i += m.len();
                // The value runs to the next separator of a URL, a connection string or prose.
                while let Some(c) = text[i..].chars().next() {
                    if matches!(c, '&' | ';' | ' ' | '\'' | '"' | ')' | '>' | '\n' | '\t') {
                        break;
                    }
                    i += c.len_utf8();
                }
            }
            None => {
                let c = text[i..].chars().next().unwrap_or_default();
                out.push(c);
                i += c.len_utf8().max(1);
            }
        }
    }
    out
}

/// `sig=` must start a parameter (`?sig=`, `&sig=`, start of text), not end a longer word such
/// as `xsig=`.
fn is_word_start(lower: &str, i: usize) -> bool {
    i == 0
        || !lower[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric())
}

/// The source of an [`eventhubs_store_core::Error`] built from an SDK error: only its redacted
/// text is kept, so no secret can leak through `source()` chains either.
#[derive(Debug)]
pub(crate) struct RedactedError(String);

impl RedactedError {
    /// Keeps the redacted `Display` of `error` and of its whole source chain.
    pub(crate) fn from_error(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(s) = source {
            let next = s.to_string();
            if !text.contains(&next) {
                text.push_str(": ");
                text.push_str(&next);
            }
            source = s.source();
        }
        RedactedError(redact_text(&text))
    }
}

impl fmt::Display for RedactedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RedactedError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_key_debug_is_redacted() {
        let key = AccountKey::new(b"super secret".to_vec());
        assert_eq!(format!("{key:?}"), "AccountKey(<redacted>)");
    }

    #[test]
    fn urls_keep_path_and_hide_query_values() {
        let url =
            Url::parse("https://acct.blob.core.windows.net/cont?sv=2022-11-02&sp=rw&sig=abc%2Bdef").unwrap();
        let shown = redact_url(&url);
        assert_eq!(
            shown,
            "https://acct.blob.core.windows.net/cont?sv=<redacted>&sp=<redacted>&sig=<redacted>"
        );
        let plain = Url::parse("http://127.0.0.1:10000/devstoreaccount1/c").unwrap();
        assert_eq!(redact_url(&plain), "http://127.0.0.1:10000/devstoreaccount1/c");
    }

    #[test]
    fn text_redaction_hides_signatures_and_keys() {
        let text = "error sending request for url (https://a.blob.core.windows.net/c/b?comp=metadata&SIG=s3cr3t%3D): \
                    AccountKey=abc==;AccountName=a 'sig=xyz' design=ok";
        let shown = redact_text(text);
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains("abc=="), "{shown}");
        assert!(!shown.contains("xyz"), "{shown}");
        assert!(shown.contains("SIG=<redacted>)"), "{shown}");
        assert!(shown.contains("AccountName=a"), "{shown}");
        assert!(shown.contains("design=ok"), "{shown}");
    }

    #[test]
    fn redacted_error_flattens_the_chain() {
        let inner = std::io::Error::other("GET https://x/c?sig=topsecret failed");
        let e = RedactedError::from_error(&inner);
        assert_eq!(e.to_string(), "GET https://x/c?sig=<redacted> failed");
    }
}
