//! The SASL layer: ANONYMOUS (what every SDK uses, authenticating later over `$cbs`) and PLAIN
//! (checked against the configured SAS key name and value).

use fe2o3_amqp_types::sasl::SaslInit;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::config::SasKey;
use crate::wire::codec::{descriptor_code, value_len};
use crate::wire::frame::{FRAME_TYPE_SASL, SASL_HEADER, encode_frame, read_frame};
use crate::wire::performative::{encode, sasl_mechanisms, sasl_outcome};

/// Largest SASL frame accepted: a sasl-init is small, so garbage cannot make us allocate more.
const SASL_MAX_FRAME_SIZE: u32 = 64 * 1024;

/// Why the SASL exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum SaslError {
    /// Transport failure.
    #[error("transport during SASL: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent something that is not a sasl-init.
    #[error("SASL protocol: {0}")]
    Protocol(String),
    /// Credentials refused.
    #[error("SASL authentication failed for mechanism {0}")]
    Refused(String),
}

/// Runs the server side of SASL after the peer's SASL protocol header was read.
pub async fn negotiate<R, W>(reader: &mut R, writer: &mut W, key: &SasKey) -> Result<String, SaslError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut out = SASL_HEADER.to_vec();
    let mechanisms = encode(&sasl_mechanisms()).map_err(|e| SaslError::Protocol(e.to_string()))?;
    encode_frame(&mut out, FRAME_TYPE_SASL, 0, &[&mechanisms]);
    writer.write_all(&out).await?;
    writer.flush().await?;

    let frame = read_frame(reader, SASL_MAX_FRAME_SIZE)
        .await
        .map_err(|e| SaslError::Protocol(e.to_string()))?;
    if frame.frame_type != FRAME_TYPE_SASL {
        return Err(SaslError::Protocol("expected a SASL frame".into()));
    }
    let init = parse_sasl_init(&frame.body)?;
    let mechanism = init.mechanism.0.clone();
    let accepted = accepts(&init, key);
    let outcome = encode(&sasl_outcome(if accepted { 0 } else { 1 }))
        .map_err(|e| SaslError::Protocol(e.to_string()))?;
    let mut out = Vec::new();
    encode_frame(&mut out, FRAME_TYPE_SASL, 0, &[&outcome]);
    writer.write_all(&out).await?;
    writer.flush().await?;
    if accepted {
        Ok(mechanism)
    } else {
        Err(SaslError::Refused(mechanism))
    }
}

/// Reads a `sasl-init` frame body: bounded validation first, then fe2o3's decoder.
///
/// # Errors
/// Anything but a well-formed `sasl-init`.
pub fn parse_sasl_init(body: &[u8]) -> Result<SaslInit, SaslError> {
    let len = value_len(body).map_err(|e| SaslError::Protocol(e.to_string()))?;
    if descriptor_code(body) != Some(0x41) {
        return Err(SaslError::Protocol("expected sasl-init".into()));
    }
    serde_amqp::from_slice(&body[..len]).map_err(|e| SaslError::Protocol(e.to_string()))
}

/// Whether a sasl-init's credentials are accepted: ANONYMOUS (and MSSBCBS) always, PLAIN with
/// the configured key name and value.
pub fn accepts(init: &SaslInit, key: &SasKey) -> bool {
    match init.mechanism.0.as_str() {
        "ANONYMOUS" | "MSSBCBS" => true,
        "PLAIN" => plain_matches(init.initial_response.as_ref().map(|b| b.as_ref()), key),
        _ => false,
    }
}

/// PLAIN: `authzid NUL authcid NUL password`; authcid = key name, password = key value.
fn plain_matches(response: Option<&[u8]>, key: &SasKey) -> bool {
    let Some(response) = response else {
        return false;
    };
    let mut parts = response.split(|b| *b == 0);
    let _authzid = parts.next();
    let (Some(user), Some(password), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    user == key.name.as_bytes() && password == key.key.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_credentials() {
        let key = SasKey::default();
        assert!(plain_matches(
            Some(b"\0RootManageSharedAccessKey\0SAS_KEY_VALUE"),
            &key
        ));
        assert!(!plain_matches(Some(b"\0RootManageSharedAccessKey\0wrong"), &key));
        assert!(!plain_matches(Some(b"garbage"), &key));
        assert!(!plain_matches(None, &key));
    }
}
