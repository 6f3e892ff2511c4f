//! The store's clock (C5): timestamps are kept as whole microseconds since the Unix epoch, so
//! what a claim returns is exactly what a later listing reads back.

use eventhubs_store_core::Result;
use time::OffsetDateTime;

use crate::error::corrupt_record;

/// Now, in microseconds since the Unix epoch.
pub(crate) fn now_micros() -> i64 {
    to_micros(OffsetDateTime::now_utc())
}

/// A time as microseconds since the Unix epoch (sub-microsecond digits dropped).
pub(crate) fn to_micros(time: OffsetDateTime) -> i64 {
    let micros = time.unix_timestamp_nanos().div_euclid(1_000);
    i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX })
}

/// Reads back a stored timestamp.
pub(crate) fn from_micros(micros: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|e| corrupt_record("ownership.last_modified_us", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microseconds_round_trip_exactly() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_767_225_600_123_456_789).unwrap();
        let us = to_micros(t);
        assert_eq!(us, 1_767_225_600_123_456);
        assert_eq!(
            from_micros(us).unwrap().unix_timestamp_nanos(),
            1_767_225_600_123_456_000
        );
        assert_eq!(to_micros(from_micros(us).unwrap()), us);
        let before_epoch = OffsetDateTime::from_unix_timestamp_nanos(-1_500).unwrap();
        assert_eq!(to_micros(before_epoch), -2);
    }

    #[test]
    fn out_of_range_timestamp_is_a_corrupt_record() {
        let e = from_micros(i64::MAX).unwrap_err();
        assert_eq!(e.kind(), eventhubs_store_core::ErrorKind::Backend);
    }

    #[test]
    fn clock_reads_now() {
        let before = to_micros(OffsetDateTime::now_utc());
        let now = now_micros();
        assert!(now >= before);
    }
}
