//! What one connection may touch, as the service decides it: a connection authenticated with
//! SASL PLAIN (the configured key) may touch everything; otherwise (SASL ANONYMOUS, the SDKs'
//! way) every link to an entity and every `$management` request needs a `$cbs` put-token whose
//! audience covers the entity and has not expired. `$cbs` itself is always open.

use crate::wire::performative::{AmqpError, condition};

/// Most put-token grants one connection keeps. A renewed token replaces the one for the same
/// audience and expired grants are dropped first, so only distinct live audiences count: a
/// processor needs one per hub, or one per partition link (SDKs that put per-link tokens).
pub const MAX_GRANTS: usize = 2048;

/// One accepted put-token: the entity path its audience names and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The audience's path, lower-cased, without scheme, host and surrounding `/`
    /// (`""` for a namespace-wide token).
    pub path: String,
    /// Expiry in seconds since the epoch.
    pub expires: i64,
}

impl Grant {
    /// A grant for `audience` (`sb://host/hub`, `amqps://host/hub/ConsumerGroups/…`, or a bare
    /// path), expiring at `expires`.
    pub fn new(audience: &str, expires: i64) -> Self {
        Grant {
            path: audience_path(audience),
            expires,
        }
    }

    /// Whether this grant covers `entity` (a path like `orders/ConsumerGroups/$default/…`) at
    /// `now` (seconds): its path is the entity or a whole-segment prefix of it.
    pub fn covers(&self, entity: &str, now: i64) -> bool {
        if self.expires <= now {
            return false;
        }
        let entity = entity.trim_matches('/').to_ascii_lowercase();
        self.path.is_empty()
            || entity == self.path
            || entity
                .strip_prefix(self.path.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// The audience's path: scheme and host dropped, lower-cased, no surrounding `/`.
pub fn audience_path(audience: &str) -> String {
    let without_scheme = audience.split_once("://").map_or(audience, |(_, rest)| {
        rest.split_once('/').map_or("", |(_, path)| path)
    });
    without_scheme.trim_matches('/').to_ascii_lowercase()
}

/// One connection's authorization state.
#[derive(Debug, Clone, Default)]
pub struct Authorization {
    /// Everything is allowed: SASL PLAIN with the configured key, or an emulator started with
    /// authorization off.
    pub everything: bool,
    grants: Vec<Grant>,
}

impl Authorization {
    /// A connection that may touch everything.
    pub fn everything() -> Self {
        Authorization {
            everything: true,
            grants: Vec::new(),
        }
    }

    /// Records an accepted put-token. A token for the same audience replaces the older one
    /// (the SDKs renew tokens before they expire), and expired grants are dropped.
    ///
    /// # Errors
    /// The connection already holds [`MAX_GRANTS`] live grants for other audiences: nothing is
    /// recorded, and the put-token is answered with the error.
    pub fn grant(&mut self, grant: Grant, now: i64) -> Result<(), AmqpError> {
        self.can_grant(&grant, now)?;
        self.grants.retain(|g| g.path != grant.path && g.expires > now);
        self.grants.push(grant);
        Ok(())
    }

    /// Whether [`Authorization::grant`] would record `grant` at `now`.
    ///
    /// # Errors
    /// As [`Authorization::grant`].
    pub fn can_grant(&self, grant: &Grant, now: i64) -> Result<(), AmqpError> {
        let live = self
            .grants
            .iter()
            .filter(|g| g.path != grant.path && g.expires > now)
            .count();
        if live >= MAX_GRANTS {
            return Err(AmqpError::new(
                condition::RESOURCE_LIMIT,
                format!(
                    "the connection holds {MAX_GRANTS} live tokens for other audiences; put a \
                     namespace or hub token instead of one per entity"
                ),
            ));
        }
        Ok(())
    }

    /// Whether `entity` may be touched at `now` (seconds).
    pub fn permits(&self, entity: &str, now: i64) -> bool {
        self.everything || self.grants.iter().any(|g| g.covers(entity, now))
    }
}

/// The service's refusal text for an entity without a covering token.
pub fn unauthorized(entity: &str, claim: &str) -> String {
    format!(
        "Unauthorized access. '{claim}' claim(s) are required to perform this operation. Resource: \
         '{entity}'. Put a token for it on $cbs first (put-token)."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_paths() {
        assert_eq!(audience_path("sb://localhost:5672/Orders"), "orders");
        assert_eq!(
            audience_path("amqps://ns.servicebus.windows.net/orders/"),
            "orders"
        );
        assert_eq!(audience_path("sb://ns.servicebus.windows.net"), "");
        assert_eq!(audience_path("sb://ns.servicebus.windows.net/"), "");
        assert_eq!(
            audience_path("amqp://h/orders/ConsumerGroups/$Default/Partitions/0"),
            "orders/consumergroups/$default/partitions/0"
        );
        assert_eq!(audience_path("orders"), "orders");
    }

    #[test]
    fn grants_cover_whole_segments_until_they_expire() {
        let hub = Grant::new("sb://h/orders", 100);
        assert!(hub.covers("orders", 99));
        assert!(hub.covers("Orders/ConsumerGroups/$default/Partitions/0", 99));
        assert!(!hub.covers("orders2", 99), "a prefix that is not a whole segment");
        assert!(!hub.covers("other", 99));
        assert!(!hub.covers("orders", 100), "expired");
        let namespace = Grant::new("sb://h/", 100);
        assert!(namespace.covers("anything/at/all", 0));
        let partition = Grant::new("sb://h/orders/Partitions/1", 100);
        assert!(partition.covers("orders/partitions/1", 0));
        assert!(!partition.covers("orders/partitions/0", 0));
        assert!(!partition.covers("orders", 0));
    }

    #[test]
    fn authorization_keeps_the_newest_token_per_audience() {
        let mut auth = Authorization::default();
        assert!(!auth.permits("orders", 0));
        auth.grant(Grant::new("sb://h/orders", 10), 0).unwrap();
        assert!(auth.permits("orders/Partitions/0", 5));
        auth.grant(Grant::new("sb://h/orders", 20), 0).unwrap();
        assert!(auth.permits("orders", 15), "the renewed token holds");
        assert!(!auth.permits("payments", 15));
        assert!(Authorization::everything().permits("payments", i64::MAX));
    }

    #[test]
    fn grants_are_capped_per_connection_but_renewals_and_expired_ones_do_not_count() {
        let mut auth = Authorization::default();
        for i in 0..MAX_GRANTS {
            auth.grant(Grant::new(&format!("sb://h/hub{i}"), 100), 0).unwrap();
        }
        let one_more = Grant::new("sb://h/another", 100);
        assert!(auth.can_grant(&one_more, 0).is_err());
        let err = auth.grant(one_more.clone(), 0).unwrap_err();
        assert_eq!(err.condition, condition::RESOURCE_LIMIT);
        assert!(!auth.permits("another", 0), "nothing recorded");
        // Renewing a held audience is always possible.
        auth.grant(Grant::new("sb://h/hub7", 200), 0).unwrap();
        // Once the others expire, their room is free again.
        assert!(auth.can_grant(&one_more, 150).is_ok());
        auth.grant(Grant::new("sb://h/another", 300), 150).unwrap();
        assert!(auth.permits("another", 160));
        assert!(auth.permits("hub7", 160));
        assert!(!auth.permits("hub8", 160));
    }
}
