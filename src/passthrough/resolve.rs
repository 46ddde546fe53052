//! Name resolution for the upstream. ureq resolves the host on every
//! request, before it looks for a pooled connection, and with a resolve
//! timeout it does so on a new thread each time. The upstream is one fixed
//! host from config, so an IP literal is answered inline and a name is
//! looked up once and remembered for a short while.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a looked-up address is reused: long enough to take lookups off
/// the hot path, short enough to follow a DNS change within a minute.
const REMEMBER: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct UpstreamResolver {
    inner: DefaultResolver,
    cache: Mutex<Option<(String, Instant, ResolvedSocketAddrs)>>,
}

impl Resolver for UpstreamResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let Some(authority) = uri.authority() else {
            return self.inner.resolve(uri, config, timeout);
        };
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            let default_port = if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            };
            let mut out = self.inner.empty();
            out.push(SocketAddr::new(
                ip,
                authority.port_u16().unwrap_or(default_port),
            ));
            return Ok(out);
        }
        let key = authority.as_str();
        if let Some((cached_key, at, addrs)) = &*self.cache.lock() {
            if cached_key == key && at.elapsed() < REMEMBER {
                return Ok(addrs.clone());
            }
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        *self.cache.lock() = Some((key.to_string(), Instant::now(), addrs.clone()));
        Ok(addrs)
    }
}
