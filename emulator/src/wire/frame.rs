//! Frame boundaries: the 8-byte header, size limits, reading and writing whole frames.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Frame type of AMQP frames.
pub const FRAME_TYPE_AMQP: u8 = 0x00;
/// Frame type of SASL frames.
pub const FRAME_TYPE_SASL: u8 = 0x01;
/// The smallest max-frame-size any peer must accept (AMQP 1.0, 2.7.1).
pub const MIN_MAX_FRAME_SIZE: u32 = 512;

/// Protocol header of plain AMQP 1.0.
pub const AMQP_HEADER: [u8; 8] = *b"AMQP\x00\x01\x00\x00";
/// Protocol header of the SASL layer.
pub const SASL_HEADER: [u8; 8] = *b"AMQP\x03\x01\x00\x00";

/// One frame as read from the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// AMQP or SASL frame type.
    pub frame_type: u8,
    /// Channel (session) number; 0 for SASL.
    pub channel: u16,
    /// Everything after the header (performative and, for transfers, payload). Empty for a
    /// heartbeat.
    pub body: Vec<u8>,
}

/// Why the byte stream cannot be read as frames.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the socket or a read failed.
    #[error("transport: {0}")]
    Io(#[from] std::io::Error),
    /// A frame larger than the negotiated maximum.
    #[error("frame of {size} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Announced size.
        size: u32,
        /// Our maximum.
        max: u32,
    },
    /// A header that cannot be a frame (size below 8, bad data offset).
    #[error("malformed frame header: {0}")]
    Malformed(&'static str),
}

/// Reads one frame, refusing frames above `max_frame_size` before allocating their body.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_frame_size: u32,
) -> Result<RawFrame, FrameError> {
    let mut header = [0u8; 8];
    reader.read_exact(&mut header).await?;
    let size = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if size < 8 {
        return Err(FrameError::Malformed("frame size below 8"));
    }
    if size > max_frame_size {
        return Err(FrameError::TooLarge {
            size,
            max: max_frame_size,
        });
    }
    let doff = usize::from(header[4]) * 4;
    if doff < 8 || doff > size as usize {
        return Err(FrameError::Malformed("data offset outside the frame"));
    }
    let mut rest = vec![0u8; size as usize - 8];
    reader.read_exact(&mut rest).await?;
    // Skip any extended header (AMQP and SASL frames define none, but a peer may send one).
    let body = rest.split_off(doff - 8);
    Ok(RawFrame {
        frame_type: header[5],
        channel: u16::from_be_bytes([header[6], header[7]]),
        body,
    })
}

/// Appends one frame holding `parts` (performative, then optional payload) to `out`.
pub fn encode_frame(out: &mut Vec<u8>, frame_type: u8, channel: u16, parts: &[&[u8]]) {
    let body: usize = parts.iter().map(|p| p.len()).sum();
    // Frames are bounded by the negotiated max-frame-size (a u32), so this cannot truncate.
    let size = u32::try_from(8 + body).unwrap_or(u32::MAX);
    out.extend_from_slice(&size.to_be_bytes());
    out.push(2);
    out.push(frame_type);
    out.extend_from_slice(&channel.to_be_bytes());
    for part in parts {
        out.extend_from_slice(part);
    }
}

/// Writes the 8-byte protocol header.
pub async fn write_header<W: AsyncWrite + Unpin>(writer: &mut W, header: &[u8; 8]) -> std::io::Result<()> {
    writer.write_all(header).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_limits() {
        let mut out = Vec::new();
        encode_frame(&mut out, FRAME_TYPE_AMQP, 3, &[b"abc", b"de"]);
        let frame = read_frame(&mut out.as_slice(), 512).await.unwrap();
        assert_eq!(frame.channel, 3);
        assert_eq!(frame.body, b"abcde");

        let mut big = Vec::new();
        encode_frame(&mut big, FRAME_TYPE_AMQP, 0, &[&[0u8; 600]]);
        assert!(matches!(
            read_frame(&mut big.as_slice(), 512).await,
            Err(FrameError::TooLarge { .. })
        ));
        let bad = [0u8, 0, 0, 4, 2, 0, 0, 0];
        assert!(matches!(
            read_frame(&mut bad.as_slice(), 512).await,
            Err(FrameError::Malformed(_))
        ));
        let truncated = &out[..out.len() - 1];
        assert!(matches!(
            read_frame(&mut &truncated[..], 512).await,
            Err(FrameError::Io(_))
        ));
    }
}
