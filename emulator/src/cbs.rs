//! `$cbs` put-token: claims-based security as the SDKs use it.
//!
//! Requests carry `operation=put-token`, `type` (`servicebus.windows.net:sastoken` or `jwt`),
//! `name` (the audience) and the token as an amqp-value string. SAS tokens naming the configured
//! key must carry a valid HMAC-SHA256 signature; every token must be well-formed and unexpired.
//! A JWT cannot be verified (the emulator has no identity provider), so it is refused with 401
//! unless the emulator was started with [`JwtPolicy::AcceptUnverified`], which checks only its
//! shape and expiry. Answers carry `status-code` 202 on success, 401 or 400 otherwise.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_amqp::value::Value;
use sha2::Sha256;

use crate::auth::{Grant, audience_path};
use crate::broker::now_ms;
use crate::config::SasKey;
use crate::wire::message::Request;

/// A put-token answer: status code and description, and on success what it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CbsResponse {
    /// 202, 400, 401, or 403 when the connection holds too many tokens.
    pub status: i32,
    /// Why, for `status-description`.
    pub description: String,
    /// The entity path and expiry the connection may now use (202 only).
    pub grant: Option<Grant>,
}

fn refuse(status: i32, description: impl Into<String>) -> CbsResponse {
    CbsResponse {
        status,
        description: description.into(),
        grant: None,
    }
}

/// What the emulator does with a JWT put on `$cbs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JwtPolicy {
    /// Refuse it with 401: its signature cannot be verified (the default).
    #[default]
    Refuse,
    /// Accept it after checking its shape and `exp` only (explicitly enabled).
    AcceptUnverified,
}

/// Longest audience (`name`) a put-token may carry: the longest entity path the service allows
/// (hub, consumer group and partition of 256 characters each) fits with room to spare.
pub const MAX_AUDIENCE_LEN: usize = 2048;

/// Handles one `$cbs` request.
pub fn handle_put_token(request: &Request, key: &SasKey, jwt: JwtPolicy) -> CbsResponse {
    let operation = request.string_property("operation").unwrap_or_default();
    if operation != "put-token" {
        return refuse(
            400,
            format!("unsupported $cbs operation {operation:?}; only put-token is"),
        );
    }
    let Some(audience) = request.string_property("name").filter(|n| !n.is_empty()) else {
        return refuse(
            400,
            "put-token: application property 'name' (the audience) is missing",
        );
    };
    if audience.len() > MAX_AUDIENCE_LEN {
        return refuse(
            400,
            format!(
                "put-token: the audience ('name') is {} bytes; at most {MAX_AUDIENCE_LEN} are accepted",
                audience.len()
            ),
        );
    }
    let token = match &request.body {
        Value::String(s) => s.as_str(),
        _ => {
            return refuse(
                400,
                "put-token: the body must be the token as an amqp-value string",
            );
        }
    };
    let verdict = verify_token(token, audience, key, jwt, now_ms() / 1000);
    match verdict {
        Ok(expires) => CbsResponse {
            status: 202,
            description: "Accepted".into(),
            grant: Some(Grant::new(audience, expires)),
        },
        Err(why) => refuse(401, format!("put-token: {why}")),
    }
}

/// Checks `token` (a SAS token or a JWT) as the service checks one put for `audience` (a URI or
/// an entity path), at `now` (seconds): a SAS token's signature, expiry and signed resource
/// (which must cover the audience), a JWT as `jwt` says. Answers the token's expiry, or why it
/// is refused. The same check serves `$cbs` put-tokens and the `security_token` property of
/// `$management` requests.
pub fn verify_token(
    token: &str,
    audience: &str,
    key: &SasKey,
    jwt: JwtPolicy,
    now: i64,
) -> Result<i64, String> {
    if let Some(sas) = token.strip_prefix("SharedAccessSignature ") {
        // A SAS token grants what it was signed for: it must cover the audience it is put for.
        verify_sas(sas, key, now).and_then(|signed| {
            let grant = Grant::new(&signed.resource, signed.expires);
            if grant.covers(&audience_path(audience), now) {
                Ok(signed.expires)
            } else {
                Err(format!(
                    "the token is signed for {:?}, which does not cover {audience:?}",
                    signed.resource
                ))
            }
        })
    } else {
        match jwt {
            JwtPolicy::AcceptUnverified => verify_jwt_shape(token, now),
            JwtPolicy::Refuse => verify_jwt_shape(token, now).and_then(|_| {
                Err(
                    "the token is a JWT, which this emulator cannot verify; start it with \
                     accept_unverified_jwt (--accept-unverified-jwt) to accept JWTs unverified, \
                     or use a SAS token"
                        .to_owned(),
                )
            }),
        }
    }
}

/// What a valid SAS token was signed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedSas {
    /// The signed resource (`sr`), percent-decoded.
    pub resource: String,
    /// Expiry (`se`) in seconds since the epoch.
    pub expires: i64,
}

/// Percent-decoding as `quote_plus`/`encodeURIComponent` produce it.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Verifies a SAS token body (`sr=…&sig=…&se=…&skn=…`), `now` in seconds.
pub fn verify_sas(token: &str, key: &SasKey, now: i64) -> Result<SignedSas, String> {
    let (mut sr, mut sig, mut se, mut skn) = (None, None, None, None);
    for pair in token.split('&') {
        match pair.split_once('=') {
            Some(("sr", v)) => sr = Some(v),
            Some(("sig", v)) => sig = Some(v),
            Some(("se", v)) => se = Some(v),
            Some(("skn", v)) => skn = Some(v),
            _ => {}
        }
    }
    let (Some(sr), Some(sig), Some(se), Some(skn)) = (sr, sig, se, skn) else {
        return Err("SAS token must carry sr, sig, se and skn".into());
    };
    let expiry: i64 = se
        .parse()
        .map_err(|_| format!("SAS token expiry se={se:?} is not a number"))?;
    if expiry <= now {
        return Err(format!("SAS token expired at {expiry} (now {now})"));
    }
    if skn != key.name {
        return Err(format!("unknown SAS key name {skn:?}"));
    }
    let given = percent_decode(sig).ok_or("SAS token signature is not percent-encoded base64")?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(given.as_bytes())
        .map_err(|_| "SAS token signature is not base64".to_owned())?;
    let signed = |resource: &str| {
        Hmac::<Sha256>::new_from_slice(key.key.as_bytes()).is_ok_and(|mut mac| {
            mac.update(format!("{resource}\n{se}").as_bytes());
            mac.verify_slice(&given).is_ok()
        })
    };
    // The SDKs sign the resource as it appears in the token; some decode it first.
    let signed_raw = signed(sr);
    let signed_decoded = percent_decode(sr).is_some_and(|decoded| signed(&decoded));
    if signed_raw || signed_decoded {
        Ok(SignedSas {
            resource: percent_decode(sr).unwrap_or_else(|| sr.to_owned()),
            expires: expiry,
        })
    } else {
        Err(format!("SAS token signature does not match key {skn:?}"))
    }
}

/// A JWT must have three base64url parts; an `exp` claim, when readable, must be in the future.
/// Answers the expiry (`i64::MAX` without a readable `exp`). The signature is not checked: the
/// emulator has no identity provider.
pub fn verify_jwt_shape(token: &str, now: i64) -> Result<i64, String> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err("token is neither a SAS token nor a JWT (header.payload.signature)".into());
    }
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1].trim_end_matches('='))
        .map_err(|_| "JWT payload is not base64url".to_owned())?;
    let claims: serde_json::Value =
        serde_json::from_slice(&payload).map_err(|_| "JWT payload is not JSON".to_owned())?;
    match claims.get("exp").and_then(serde_json::Value::as_i64) {
        Some(exp) if exp <= now => Err(format!("JWT expired at {exp} (now {now})")),
        Some(exp) => Ok(exp),
        None => Ok(i64::MAX),
    }
}

/// Builds a SAS token signed with `key` for `resource`, expiring at `expiry` (seconds). Tests
/// and tools use it to talk to the emulator the way the SDKs do.
pub fn sas_token(resource: &str, key: &SasKey, expiry: i64) -> String {
    let encoded: String = resource
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let signature = match Hmac::<Sha256>::new_from_slice(key.key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(format!("{encoded}\n{expiry}").as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    let signature: String = signature
        .bytes()
        .map(|b| match b {
            b'+' => "%2B".to_owned(),
            b'/' => "%2F".to_owned(),
            b'=' => "%3D".to_owned(),
            b => (b as char).to_string(),
        })
        .collect();
    format!(
        "SharedAccessSignature sr={encoded}&sig={signature}&se={expiry}&skn={}",
        key.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(token: &str) -> Request {
        Request {
            message_id: Value::Ulong(1),
            reply_to: None,
            application_properties: vec![
                ("operation".into(), Value::String("put-token".into())),
                (
                    "type".into(),
                    Value::String("servicebus.windows.net:sastoken".into()),
                ),
                ("name".into(), Value::String("sb://localhost/hub".into())),
            ],
            body: Value::String(token.into()),
        }
    }

    #[test]
    fn valid_sas_is_accepted() {
        let key = SasKey::default();
        let expires = now_ms() / 1000 + 3600;
        let token = sas_token("sb://localhost:5672/hub", &key, expires);
        let answer = handle_put_token(&request(&token), &key, JwtPolicy::Refuse);
        assert_eq!(answer.status, 202);
        assert_eq!(answer.grant, Some(Grant::new("sb://localhost/hub", expires)));
        // A namespace-wide token may be put for any entity of it.
        let namespace = sas_token("sb://localhost:5672/", &key, expires);
        assert_eq!(
            handle_put_token(&request(&namespace), &key, JwtPolicy::Refuse).status,
            202
        );
    }

    #[test]
    fn a_sas_token_for_another_entity_is_refused() {
        let key = SasKey::default();
        let token = sas_token("sb://localhost/other", &key, now_ms() / 1000 + 3600);
        let answer = handle_put_token(&request(&token), &key, JwtPolicy::Refuse);
        assert_eq!(answer.status, 401);
        assert!(answer.description.contains("does not cover"), "{answer:?}");
        assert_eq!(answer.grant, None);
    }

    #[test]
    fn bad_signature_expiry_and_shape_are_refused() {
        let key = SasKey::default();
        let other = SasKey {
            name: key.name.clone(),
            key: "other".into(),
        };
        let forged = sas_token("sb://localhost/hub", &other, now_ms() / 1000 + 3600);
        assert_eq!(
            handle_put_token(&request(&forged), &key, JwtPolicy::Refuse).status,
            401
        );
        let expired = sas_token("sb://localhost/hub", &key, 1000);
        let answer = handle_put_token(&request(&expired), &key, JwtPolicy::Refuse);
        assert_eq!(answer.status, 401);
        assert!(answer.description.contains("expired"));
        assert_eq!(
            handle_put_token(&request("garbage"), &key, JwtPolicy::Refuse).status,
            401
        );
        let mut no_op = request("x");
        no_op.application_properties[0].1 = Value::String("delete-token".into());
        assert_eq!(handle_put_token(&no_op, &key, JwtPolicy::Refuse).status, 400);
    }

    #[test]
    fn jwt_shape_and_expiry() {
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let live = format!(
            "{}.{}.sig",
            enc("{}"),
            enc(&format!("{{\"exp\":{}}}", now_ms() / 1000 + 60))
        );
        assert!(verify_jwt_shape(&live, now_ms() / 1000).is_ok());
        let dead = format!("{}.{}.sig", enc("{}"), enc("{\"exp\":1}"));
        assert!(verify_jwt_shape(&dead, now_ms() / 1000).is_err());
        assert!(verify_jwt_shape("a.b", 0).is_err());
    }

    #[test]
    fn a_jwt_is_refused_unless_unverified_jwts_are_accepted() {
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let live = format!(
            "{}.{}.sig",
            enc("{}"),
            enc(&format!("{{\"exp\":{}}}", now_ms() / 1000 + 60))
        );
        let key = SasKey::default();
        let refused = handle_put_token(&request(&live), &key, JwtPolicy::Refuse);
        assert_eq!(refused.status, 401);
        assert!(refused.description.contains("cannot verify"), "{refused:?}");
        assert_eq!(refused.grant, None);
        let accepted = handle_put_token(&request(&live), &key, JwtPolicy::AcceptUnverified);
        assert_eq!(accepted.status, 202, "{accepted:?}");
        assert!(accepted.grant.is_some());
        // An expired JWT stays refused either way.
        let dead = format!("{}.{}.sig", enc("{}"), enc("{\"exp\":1}"));
        let answer = handle_put_token(&request(&dead), &key, JwtPolicy::AcceptUnverified);
        assert_eq!(answer.status, 401);
    }

    #[test]
    fn an_oversized_audience_is_refused_before_any_grant() {
        let key = SasKey::default();
        let mut long = request(&sas_token("sb://localhost/", &key, now_ms() / 1000 + 60));
        long.application_properties[2].1 =
            Value::String(format!("sb://localhost/{}", "a".repeat(MAX_AUDIENCE_LEN)));
        let answer = handle_put_token(&long, &key, JwtPolicy::Refuse);
        assert_eq!(answer.status, 400);
        assert!(answer.description.contains("'name'"), "{answer:?}");
        assert_eq!(answer.grant, None);
    }
}
