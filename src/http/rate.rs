//! A rate limit per client address on every request (REST calls, upgrades, polls), by
//! `actix-governor`: `limits.requests_per_second_per_address` with a burst of
//! `limits.request_burst_per_address`, 429 `RATE_LIMITED` with `Retry-After` past it. Loopback
//! (this machine's own tools) is left out unless `limits.rate_limit_loopback`. The limiter keeps
//! a small state per address it has seen: addresses quiet for a while are forgotten (`spawn_pruning`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use actix_governor::governor::NotUntil;
use actix_governor::governor::clock::{Clock, DefaultClock, QuantaInstant};
use actix_governor::governor::middleware::NoOpMiddleware;
use actix_governor::{GovernorConfig, GovernorConfigBuilder, KeyExtractor, SimpleKeyExtractionError};
use actix_web::dev::ServiceRequest;
use actix_web::{HttpResponse, HttpResponseBuilder};

use crate::protocol::{ErrorCode, WireError};
use crate::settings::LimitSettings;

/// The rate limit's configuration: built once, shared by every worker.
pub type RateLimit = GovernorConfig<PeerAddress, NoOpMiddleware>;

/// Keys requests by the address they came from.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddress {
    limit_loopback: bool,
}

impl KeyExtractor for PeerAddress {
    type Key = IpAddr;
    type KeyExtractionError = SimpleKeyExtractionError<&'static str>;

    fn extract(&self, req: &ServiceRequest) -> Result<IpAddr, Self::KeyExtractionError> {
        // Unix sockets and tests without a peer share one key.
        Ok(req.peer_addr().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |peer| canonical(peer.ip())))
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        mut response: HttpResponseBuilder,
    ) -> HttpResponse {
        let wait = negative.wait_time_from(DefaultClock::default().now()).as_secs().max(1);
        let error = WireError::new(
            ErrorCode::RateLimited,
            format!("Too many requests from this address; try again in {wait} s"),
        );
        response.json(super::error::RestError::of(&error))
    }

    fn whitelisted_keys(&self) -> Vec<IpAddr> {
        match self.limit_loopback {
            true => Vec::new(),
            false => vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)],
        }
    }
}

/// The key of a client address: an IPv4 address as itself (also when it comes mapped into IPv6,
/// as on a server listening on `::`), an IPv6 address by its /64 (one host may hold a whole
/// /64, and would otherwise get a fresh budget per address).
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None if v6.is_loopback() => IpAddr::V6(v6),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// The configuration of `limits`.
pub fn rate_limit(limits: &LimitSettings) -> RateLimit {
    let mut builder = GovernorConfigBuilder::default();
    builder
        .requests_per_second(u64::from(limits.requests_per_second_per_address.max(1)))
        .burst_size(limits.request_burst_per_address.max(1));
    let built = builder.key_extractor(PeerAddress { limit_loopback: limits.rate_limit_loopback }).finish();
    // `finish` refuses only a zero rate or burst, which the `max(1)`s and the settings' own
    // checks rule out.
    built.unwrap_or_else(|| unreachable!("a rate and a burst of at least 1"))
}

/// Forgets, every minute, the addresses whose budget is full again (they would be allowed a
/// whole burst anyway), so the limiter's memory follows the addresses active now.
pub fn spawn_pruning(limit: &RateLimit, mut stopping: tokio::sync::watch::Receiver<bool>) {
    let limiter = limit.limiter();
    actix_web::rt::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(60)) => {}
                _ = stopping.changed() => return,
            }
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_keyed_as_one_client_has_them() {
        let v4: IpAddr = "192.168.1.20".parse().expect("ip");
        assert_eq!(canonical(v4), v4);
        assert_eq!(canonical("::ffff:192.168.1.20".parse().expect("ip")), v4);
        assert_eq!(canonical("::ffff:127.0.0.1".parse().expect("ip")), IpAddr::V4(Ipv4Addr::LOCALHOST));
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        assert_eq!(canonical(one), canonical(other));
        assert_ne!(canonical(one), canonical("2001:db8:1:3::1".parse().expect("ip")));
        assert!(canonical("::1".parse().expect("ip")).is_loopback());
    }
}
