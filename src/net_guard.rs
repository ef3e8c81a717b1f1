//! The SSRF guard for outbound webhooks: org admins choose the URLs the server POSTs to, so
//! without it any admin could make the server read its cloud metadata, its database or anything
//! else on the networks it sits in.
//!
//! Two checkpoints, because one alone leaves a gap:
//! - [`NetGuard::check_url`] parses the URL the way the delivery client will (WHATWG, so
//!   `http://0x7f.1/` and `http://2130706433/` are 127.0.0.1 before anything is judged), refuses
//!   other schemes, credentials and local names, judges an IP-literal host, and resolves a name
//!   and judges every address. Run it when a webhook is registered and again before every
//!   delivery, and deliver to the [`Url`] it returns, never to the raw string. IP-literal hosts
//!   never reach a resolver inside reqwest, so this is the only check they get.
//! - [`NetGuard::client`] builds the delivery client around a resolver that applies the same
//!   rules to the addresses it hands to reqwest, refusing the whole answer if any address is
//!   forbidden. Reqwest connects only to addresses that passed, and never looks the name up by
//!   itself, so a name that re-resolves (DNS rebinding) between the check and the connection
//!   gains nothing. Redirects are never followed: a 3xx is a failed delivery, not a new target.
//!   (reqwest 0.13 is linked as `reqwest13`: the name `reqwest` is the tests' 0.12.)
//!
//! What is refused, in words: anything but http and https (plain http only when the guard was
//! built with `allow_http`), a user name or password, a missing host, names that are local by
//! definition (dotless names such as `localhost`, `metadata` or `intranet`, which the resolver
//! would complete with the server's own search domains, and `*.localhost`, `*.localdomain`,
//! `*.internal`, `*.local`, `*.home.arpa`, `metadata.goog`), and any address that is not a
//! public unicast one: see [`classify`] for the ranges, including IPv4 hidden inside IPv6
//! (mapped, compatible, translated, 6to4, Teredo, NAT64).
//!
//! The development allowlist (`webhooks.allow_networks`) lets tests and local setups reach a
//! receiver on a forbidden network. It only ever widens the address check: schemes,
//! credentials and local names stay refused, so a local receiver is reached through an IP
//! literal (`http://127.0.0.1:8080/`) or a name whose address is allowlisted. A cloud metadata
//! address needs an allowlist entry for exactly that address (a `/32` or `/128`): allowing
//! `169.254.0.0/16` for a link-local receiver does not open the metadata service with it.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ipnet::IpNet;
use url::{Host, Url};

/// How long a webhook delivery may take in all (connect, send, first byte and body) unless the
/// caller chooses otherwise; a slow receiver must not hold a delivery worker for long.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// A registration request must not hang on a resolver that never answers.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an address is out of bounds. Shown to clients (inside [`UnsafeUrl`]), so it names the kind
/// of network, never the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    Unspecified,
    Loopback,
    Private,
    LinkLocal,
    UniqueLocal,
    /// 100.64.0.0/10, carrier-grade NAT.
    SharedAddressSpace,
    Multicast,
    Broadcast,
    /// Set aside by the IETF, or not global unicast at all.
    Reserved,
    Documentation,
    Benchmarking,
    /// A cloud provider's instance metadata or agent endpoint: the classic SSRF prize.
    CloudMetadata,
    /// IPv4-compatible IPv6 and site-local IPv6: deprecated forms no receiver legitimately uses.
    Deprecated,
}

impl fmt::Display for AddressKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressKind::Unspecified => "unspecified",
            AddressKind::Loopback => "loopback",
            AddressKind::Private => "private",
            AddressKind::LinkLocal => "link-local",
            AddressKind::UniqueLocal => "unique-local",
            AddressKind::SharedAddressSpace => "carrier-grade NAT",
            AddressKind::Multicast => "multicast",
            AddressKind::Broadcast => "broadcast",
            AddressKind::Reserved => "reserved",
            AddressKind::Documentation => "documentation",
            AddressKind::Benchmarking => "benchmarking",
            AddressKind::CloudMetadata => "cloud metadata",
            AddressKind::Deprecated => "deprecated",
        })
    }
}

/// Why a webhook URL is refused. The HTTP layer answers 422 `unsafe_url` with this Display, so
/// every message is safe to show: it gives the reason, never an address or a resolver error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeUrl {
    #[error("not a valid URL: {0}")]
    Invalid(#[source] url::ParseError),
    #[error("only http and https URLs can receive webhooks")]
    Scheme,
    #[error("plain http is not allowed for webhooks; use https")]
    PlainHttp,
    #[error("the URL must not contain a user name or password")]
    Credentials,
    #[error("the URL has no host")]
    NoHost,
    #[error("the host name refers to a local or internal service")]
    LocalName,
    #[error("the host is or resolves to a forbidden address ({0})")]
    Address(AddressKind),
    #[error("the host name could not be resolved")]
    Unresolved,
}

/// A `webhooks.allow_networks` entry that is neither a network nor an address: a startup error,
/// so it names the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("webhooks.allow_networks: {0:?} is not a network (such as 127.0.0.1/32) or an address")]
pub struct BadAllowNetwork(pub String);

/// Turns a host name into addresses. A trait so that tests can answer with any addresses (a
/// rebinding resolver, a name for a loopback receiver) without touching real DNS.
#[async_trait]
pub trait Resolver: Send + Sync {
    /// Every address `host` has; the guard judges all of them, so return the whole answer.
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>>;
}

/// The system resolver (getaddrinfo through tokio): what production uses, so webhooks resolve as
/// every other program on the host does.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0))
            .await?
            .map(|addr| addr.ip())
            .collect())
    }
}

/// The guard: the rules of this module plus the allowlist and resolver they run with. Cheap to
/// clone; the delivery client keeps a clone inside its resolver.
#[derive(Clone)]
pub struct NetGuard {
    allow: Arc<[IpNet]>,
    allow_http: bool,
    resolver: Arc<dyn Resolver>,
}

impl fmt::Debug for NetGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetGuard")
            .field("allow", &self.allow)
            .field("allow_http", &self.allow_http)
            .finish_non_exhaustive()
    }
}

impl NetGuard {
    /// The production guard, resolving through the system resolver. `allow_networks` is
    /// `webhooks.allow_networks` (empty outside development); `allow_http` is false in
    /// production, where a webhook body must not cross the network in clear.
    pub fn new(allow_networks: &[String], allow_http: bool) -> Result<Self, BadAllowNetwork> {
        Self::with_resolver(allow_networks, allow_http, Arc::new(SystemResolver))
    }

    /// As [`NetGuard::new`], resolving through `resolver` (tests inject their answers here).
    pub fn with_resolver(
        allow_networks: &[String],
        allow_http: bool,
        resolver: Arc<dyn Resolver>,
    ) -> Result<Self, BadAllowNetwork> {
        let allow = allow_networks
            .iter()
            .map(|entry| parse_network(entry))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NetGuard {
            allow: allow.into(),
            allow_http,
            resolver,
        })
    }

    /// The registration-time check, to be run again before every delivery (a name's addresses
    /// change). Returns the parsed, normalised URL that the delivery must use.
    pub async fn check_url(&self, raw: &str) -> Result<Url, UnsafeUrl> {
        let url = Url::parse(raw.trim()).map_err(|error| match error {
            url::ParseError::EmptyHost => UnsafeUrl::NoHost,
            other => UnsafeUrl::Invalid(other),
        })?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err(UnsafeUrl::PlainHttp),
            _ => return Err(UnsafeUrl::Scheme),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UnsafeUrl::Credentials);
        }
        match url.host() {
            None => return Err(UnsafeUrl::NoHost),
            Some(Host::Ipv4(ip)) => self.check_address(IpAddr::V4(ip))?,
            Some(Host::Ipv6(ip)) => self.check_address(IpAddr::V6(ip))?,
            Some(Host::Domain(name)) => {
                self.resolve_checked(name).await?;
            }
        }
        Ok(url)
    }

    /// The delivery client: resolves only through this guard, follows no redirect, ignores any
    /// proxy set in the environment (a proxy would make the connection on our behalf, to
    /// addresses this guard never sees), speaks https through rustls and refuses plain http
    /// unless the guard allows it. `timeout` bounds a whole request
    /// ([`DEFAULT_WEBHOOK_TIMEOUT`] for webhooks).
    pub fn client(&self, timeout: Duration) -> Result<reqwest13::Client, reqwest13::Error> {
        reqwest13::Client::builder()
            .dns_resolver(CheckedResolve(self.clone()))
            .redirect(reqwest13::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .tls_backend_rustls()
            .https_only(!self.allow_http)
            .referer(false)
            .build()
    }

    /// Judges one address: forbidden ones pass only through the allowlist.
    fn check_address(&self, ip: IpAddr) -> Result<(), UnsafeUrl> {
        let Some(kind) = classify(ip) else {
            return Ok(());
        };
        let canonical = ip.to_canonical();
        let allowed = self.allow.iter().any(|net| {
            if kind == AddressKind::CloudMetadata {
                net.prefix_len() == net.max_prefix_len()
                    && (net.addr() == ip || net.addr() == canonical)
            } else {
                net.contains(&ip) || net.contains(&canonical)
            }
        });
        if allowed {
            Ok(())
        } else {
            Err(UnsafeUrl::Address(kind))
        }
    }

    /// Resolves `name` once and returns its addresses only if every one of them passes: one
    /// forbidden address in a mixed answer refuses the whole answer, since the client could be
    /// made to connect to it on a retry or a second connection.
    async fn resolve_checked(&self, name: &str) -> Result<Vec<IpAddr>, UnsafeUrl> {
        if is_local_name(name) {
            return Err(UnsafeUrl::LocalName);
        }
        let answer = tokio::time::timeout(LOOKUP_TIMEOUT, self.resolver.lookup(name)).await;
        let ips = match answer {
            Ok(Ok(ips)) if !ips.is_empty() => ips,
            Ok(Ok(_)) => return Err(UnsafeUrl::Unresolved),
            Ok(Err(error)) => {
                tracing::debug!(host = name, %error, "webhook host lookup failed");
                return Err(UnsafeUrl::Unresolved);
            }
            Err(_) => {
                tracing::debug!(host = name, "webhook host lookup timed out");
                return Err(UnsafeUrl::Unresolved);
            }
        };
        for ip in &ips {
            self.check_address(*ip)?;
        }
        Ok(ips)
    }
}

/// The guard as reqwest's resolver: the addresses reqwest connects to are exactly the checked
/// ones (port 0, which reqwest replaces with the URL's port).
struct CheckedResolve(NetGuard);

impl reqwest13::dns::Resolve for CheckedResolve {
    fn resolve(&self, name: reqwest13::dns::Name) -> reqwest13::dns::Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let ips = guard.resolve_checked(name.as_str()).await?;
            let addrs: reqwest13::dns::Addrs =
                Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// The guard's refusal inside a failed delivery, if that is why it failed; lets the delivery
/// log tell "refused by the guard" from "receiver down".
pub fn refusal(error: &reqwest13::Error) -> Option<&UnsafeUrl> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(unsafe_url) = current.downcast_ref::<UnsafeUrl>() {
            return Some(unsafe_url);
        }
        source = current.source();
    }
    None
}

/// True when webhooks may not reach `ip` (before any allowlist).
pub fn is_forbidden(ip: IpAddr) -> bool {
    classify(ip).is_some()
}

/// What kind of non-public address `ip` is, or None for a public unicast address.
///
/// IPv4: 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24, 192.0.2/24,
/// 192.88.99/24 (6to4 relays), 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 224/4, 240/4
/// and 255.255.255.255, plus the cloud metadata addresses. IPv6: `::`, `::1`, anything outside
/// 2000::/3 (which holds fc00::/7, fe80::/10, fec0::/10, ff00::/8 and 100::/64), 2001:db8::/32,
/// 3fff::/20, 2001:2::/48, 2001:10::/28, `fd00:ec2::254`, and IPv6 forms that carry an IPv4 the
/// host may end up reaching, judged by that IPv4: mapped `::ffff:a.b.c.d`, translated
/// `::ffff:0:a.b.c.d`, NAT64 (64:ff9b::/96, 64:ff9b:1::/48), 6to4 (2002::/16) and Teredo
/// (2001::/32, server and client). IPv4-compatible `::a.b.c.d` is refused whatever it carries.
pub fn classify(ip: IpAddr) -> Option<AddressKind> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Instance metadata and agent endpoints: GCP/AWS/Azure/OpenStack, AWS ECS task metadata,
/// Alibaba, Azure's WireServer (a public address that only answers from inside Azure) and AWS's
/// IPv6 endpoint.
const METADATA: [IpAddr; 5] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

/// Forbidden IPv4 networks; the first match names the kind, so narrower entries come first.
const V4_RANGES: [(Ipv4Addr, u8, AddressKind); 16] = [
    (Ipv4Addr::BROADCAST, 32, AddressKind::Broadcast),
    (Ipv4Addr::new(0, 0, 0, 0), 8, AddressKind::Unspecified),
    (Ipv4Addr::new(10, 0, 0, 0), 8, AddressKind::Private),
    (
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        AddressKind::SharedAddressSpace,
    ),
    (Ipv4Addr::new(127, 0, 0, 0), 8, AddressKind::Loopback),
    (Ipv4Addr::new(169, 254, 0, 0), 16, AddressKind::LinkLocal),
    (Ipv4Addr::new(172, 16, 0, 0), 12, AddressKind::Private),
    (Ipv4Addr::new(192, 0, 0, 0), 24, AddressKind::Reserved),
    (Ipv4Addr::new(192, 0, 2, 0), 24, AddressKind::Documentation),
    (Ipv4Addr::new(192, 88, 99, 0), 24, AddressKind::Reserved),
    (Ipv4Addr::new(192, 168, 0, 0), 16, AddressKind::Private),
    (Ipv4Addr::new(198, 18, 0, 0), 15, AddressKind::Benchmarking),
    (
        Ipv4Addr::new(198, 51, 100, 0),
        24,
        AddressKind::Documentation,
    ),
    (
        Ipv4Addr::new(203, 0, 113, 0),
        24,
        AddressKind::Documentation,
    ),
    (Ipv4Addr::new(224, 0, 0, 0), 4, AddressKind::Multicast),
    (Ipv4Addr::new(240, 0, 0, 0), 4, AddressKind::Reserved),
];

/// Forbidden IPv6 networks inside 2000::/3 and the named ones outside it (everything else
/// outside 2000::/3 is `Reserved`).
const V6_RANGES: [(Ipv6Addr, u8, AddressKind); 9] = [
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        AddressKind::Documentation,
    ),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        AddressKind::Documentation,
    ),
    (
        Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0),
        48,
        AddressKind::Benchmarking,
    ),
    (
        Ipv6Addr::new(0x2001, 0x10, 0, 0, 0, 0, 0, 0),
        28,
        AddressKind::Reserved,
    ),
    (
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        AddressKind::Reserved,
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        AddressKind::UniqueLocal,
    ),
    (
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
        10,
        AddressKind::LinkLocal,
    ),
    (
        Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        AddressKind::Deprecated,
    ),
    (
        Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
        8,
        AddressKind::Multicast,
    ),
];

fn classify_v4(ip: Ipv4Addr) -> Option<AddressKind> {
    if METADATA.contains(&IpAddr::V4(ip)) {
        return Some(AddressKind::CloudMetadata);
    }
    let bits = u32::from(ip);
    V4_RANGES
        .iter()
        .find(|(net, len, _)| prefix_matches(bits.into(), u32::from(*net).into(), *len, 32))
        .map(|(_, _, kind)| *kind)
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressKind> {
    if METADATA.contains(&IpAddr::V6(ip)) {
        return Some(AddressKind::CloudMetadata);
    }
    let bits = u128::from(ip);
    let within = |net: Ipv6Addr, len: u8| prefix_matches(bits, u128::from(net), len, 128);
    // The IPv4 carried in bits `from..from + 32` (counted from the most significant).
    let v4_at = |from: u32| Ipv4Addr::from(((bits >> (96 - from)) & 0xffff_ffff) as u32);
    let last_v4 = v4_at(96);

    if ip.is_unspecified() {
        return Some(AddressKind::Unspecified);
    }
    if ip.is_loopback() {
        return Some(AddressKind::Loopback);
    }
    if within(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96)
        || within(Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96)
        || within(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96)
        || within(Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48)
    {
        return classify_v4(last_v4);
    }
    if within(Ipv6Addr::UNSPECIFIED, 96) {
        return Some(classify_v4(last_v4).unwrap_or(AddressKind::Deprecated));
    }
    if within(Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        return classify_v4(v4_at(16));
    }
    if within(Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32) {
        let client = Ipv4Addr::from(!u32::from(last_v4));
        return classify_v4(v4_at(32)).or_else(|| classify_v4(client));
    }
    if let Some((_, _, kind)) = V6_RANGES.iter().find(|(net, len, _)| within(*net, *len)) {
        return Some(*kind);
    }
    if !within(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3) {
        return Some(AddressKind::Reserved);
    }
    None
}

/// Whether the first `len` of `width` bits of `bits` and `net` agree (both right-aligned).
fn prefix_matches(bits: u128, net: u128, len: u8, width: u32) -> bool {
    let host_bits = width - u32::from(len);
    (bits ^ net).checked_shr(host_bits).unwrap_or(0) == 0
}

/// Names that are local by definition, refused without asking any resolver.
fn is_local_name(name: &str) -> bool {
    const SUFFIXES: [&str; 5] = ["localhost", "localdomain", "internal", "local", "home.arpa"];
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    !name.contains('.')
        || name == "metadata.goog"
        || SUFFIXES.iter().any(|suffix| {
            name == *suffix
                || name
                    .strip_suffix(suffix)
                    .is_some_and(|rest| rest.ends_with('.'))
        })
}

/// An allowlist entry: a network in CIDR notation, or a bare address meaning just that address.
fn parse_network(entry: &str) -> Result<IpNet, BadAllowNetwork> {
    let entry = entry.trim();
    entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| BadAllowNetwork(entry.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::str::FromStr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use reqwest13::dns::Resolve;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;

    use super::AddressKind::*;
    use super::UnsafeUrl::*;
    use super::*;

    const PUBLIC_V4: &str = "93.184.215.14";
    const PUBLIC_V6: &str = "2606:4700::1111";

    /// Answers from a fixed table and counts the questions, so a test can tell whether the
    /// guard asked at all.
    struct FakeResolver {
        answers: HashMap<String, Vec<IpAddr>>,
        calls: AtomicUsize,
    }

    impl FakeResolver {
        fn new(answers: &[(&str, &[&str])]) -> Arc<Self> {
            let answers = answers
                .iter()
                .map(|(name, ips)| {
                    let ips = ips.iter().map(|ip| ip.parse().unwrap()).collect();
                    (name.to_string(), ips)
                })
                .collect();
            Arc::new(FakeResolver {
                answers,
                calls: AtomicUsize::new(0),
            })
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl Resolver for FakeResolver {
        async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.answers
                .get(host.trim_end_matches('.'))
                .cloned()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such host"))
        }
    }

    /// Never answers: stands for a resolver that hangs.
    struct SilentResolver;

    #[async_trait]
    impl Resolver for SilentResolver {
        async fn lookup(&self, _host: &str) -> io::Result<Vec<IpAddr>> {
            std::future::pending().await
        }
    }

    fn guard(allow: &[&str], allow_http: bool, resolver: Arc<FakeResolver>) -> NetGuard {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        NetGuard::with_resolver(&allow, allow_http, resolver).unwrap()
    }

    /// A resolver for the usual names: a public one, and a public-looking one that points home.
    fn usual_resolver() -> Arc<FakeResolver> {
        FakeResolver::new(&[
            ("hooks.example.com", &[PUBLIC_V4]),
            ("example.com", &[PUBLIC_V4]),
            ("evil.example.com", &["127.0.0.1"]),
            ("rebind.example.com", &[PUBLIC_V4, "10.0.0.1"]),
            ("rebind6.example.com", &["fd00::1", PUBLIC_V6]),
        ])
    }

    fn hostile() -> Vec<(&'static str, UnsafeUrl)> {
        vec![
            // Loopback, however spelt.
            ("http://127.0.0.1/", Address(Loopback)),
            ("http://2130706433/", Address(Loopback)),
            ("http://0177.0.0.1/", Address(Loopback)),
            ("http://0x7f.1/", Address(Loopback)),
            ("http://127.1/", Address(Loopback)),
            ("http://0x7f000001/", Address(Loopback)),
            ("http://017700000001/", Address(Loopback)),
            ("http://127.0.0.1./", Address(Loopback)),
            ("http://127.0.0.%31/", Address(Loopback)),
            (
                "http://\u{ff11}\u{ff12}\u{ff17}.\u{ff10}.\u{ff10}.\u{ff11}/",
                Address(Loopback),
            ),
            ("http://[::1]/", Address(Loopback)),
            ("http://[::ffff:127.0.0.1]/", Address(Loopback)),
            ("http://[::ffff:7f00:1]/", Address(Loopback)),
            ("http://[::127.0.0.1]/", Address(Loopback)),
            ("http://[2002:7f00:1::]/", Address(Loopback)),
            ("http://[64:ff9b::7f00:1]/", Address(Loopback)),
            ("http://localhost/", LocalName),
            ("HTTP://LOCALHOST/", LocalName),
            ("http://localhost./", LocalName),
            ("http://api.localhost/", LocalName),
            ("http://localhost.localdomain/", LocalName),
            ("http://%6c%6f%63%61%6c%68%6f%73%74/", LocalName),
            ("http://\u{24db}ocalhost/", LocalName),
            ("http://evil.example.com/", Address(Loopback)),
            // Private, special and reserved IPv4.
            ("http://10.0.0.1:8080/", Address(Private)),
            ("http://192.168.1.1/", Address(Private)),
            ("http://172.16.0.1/", Address(Private)),
            ("http://172.31.255.255/", Address(Private)),
            ("http://100.64.0.1/", Address(SharedAddressSpace)),
            ("http://169.254.1.1/", Address(LinkLocal)),
            ("http://224.0.0.1/", Address(Multicast)),
            ("http://255.255.255.255/", Address(Broadcast)),
            ("http://0.0.0.0/", Address(Unspecified)),
            ("http://0/", Address(Unspecified)),
            ("http://192.0.0.8/", Address(Reserved)),
            ("http://192.0.2.1/", Address(Documentation)),
            ("http://198.18.0.1/", Address(Benchmarking)),
            ("http://198.19.255.255/", Address(Benchmarking)),
            ("http://198.51.100.7/", Address(Documentation)),
            ("http://203.0.113.9/", Address(Documentation)),
            ("http://240.0.0.1/", Address(Reserved)),
            ("http://rebind.example.com/", Address(Private)),
            ("http://rebind6.example.com/", Address(UniqueLocal)),
            // IPv6, and IPv4 inside IPv6.
            ("http://[::]/", Address(Unspecified)),
            ("http://[fe80::1]/", Address(LinkLocal)),
            ("http://[fc00::1]/", Address(UniqueLocal)),
            ("http://[fd12:3456::1]/", Address(UniqueLocal)),
            ("http://[fec0::1]/", Address(Deprecated)),
            ("http://[ff02::1]/", Address(Multicast)),
            ("http://[100::1]/", Address(Reserved)),
            ("http://[2001:db8::1]/", Address(Documentation)),
            ("http://[4000::1]/", Address(Reserved)),
            ("http://[::ffff:0:a00:1]/", Address(Private)),
            // Teredo: client 10.0.0.1 (stored inverted), server public.
            (
                "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/",
                Address(Private),
            ),
            // Teredo: server 10.0.0.1, client public.
            (
                "http://[2001:0:a00:1:8000:63bf:6c1d:4c87]/",
                Address(Private),
            ),
            ("http://[64:ff9b:1::a00:1]/", Address(Private)),
            // Cloud metadata.
            (
                "http://169.254.169.254/latest/meta-data/",
                Address(CloudMetadata),
            ),
            ("http://2852039166/", Address(CloudMetadata)),
            ("http://0xa9fea9fe/", Address(CloudMetadata)),
            (
                "http://169.254.170.2/v2/credentials",
                Address(CloudMetadata),
            ),
            (
                "http://100.100.100.200/latest/meta-data/",
                Address(CloudMetadata),
            ),
            ("http://168.63.129.16/", Address(CloudMetadata)),
            ("http://[fd00:ec2::254]/", Address(CloudMetadata)),
            ("http://[64:ff9b::a9fe:a9fe]/", Address(CloudMetadata)),
            ("http://[0:0:0:0:0:ffff:a9fe:a9fe]/", Address(CloudMetadata)),
            (
                "http://metadata.google.internal/computeMetadata/v1/",
                LocalName,
            ),
            ("http://METADATA.GOOGLE.INTERNAL./", LocalName),
            ("http://metadata/", LocalName),
            ("http://metadata.goog/", LocalName),
            ("http://instance-data/", LocalName),
            ("http://instance-data.ec2.internal/", LocalName),
            ("https://billing.internal/", LocalName),
            ("https://intranet/", LocalName),
            ("https://printer.local/", LocalName),
            ("https://router.home.arpa/", LocalName),
            // Schemes, credentials, hosts.
            ("file:///etc/passwd", Scheme),
            ("gopher://example.com/", Scheme),
            ("ftp://example.com/", Scheme),
            ("data:text/plain,hello", Scheme),
            ("javascript:alert(1)", Scheme),
            ("dict://127.0.0.1:11211/", Scheme),
            ("ws://hooks.example.com/", Scheme),
            ("http://user:pw@example.com/", Credentials),
            ("https://user@hooks.example.com/", Credentials),
            ("https://:pw@hooks.example.com/", Credentials),
            ("http://hooks.example.com@127.0.0.1/", Credentials),
            ("http://", NoHost),
            ("https:///", NoHost),
            (
                "http://[fe80::1%25eth0]/",
                Invalid(url::ParseError::InvalidIpv6Address),
            ),
            (
                "http://256.0.0.1/",
                Invalid(url::ParseError::InvalidIpv4Address),
            ),
            (
                "http://1.2.3.4.5/",
                Invalid(url::ParseError::InvalidIpv4Address),
            ),
            ("http://nosuch.example.com/", Unresolved),
        ]
    }

    #[tokio::test]
    async fn hostile_urls_are_refused_for_the_stated_reason() {
        let guard = guard(&[], true, usual_resolver());
        let cases = hostile();
        assert!(cases.len() >= 40);
        let mut wrong = Vec::new();
        for (url, expected) in cases {
            let got = guard.check_url(url).await;
            if got.as_ref().err() != Some(&expected) {
                wrong.push(format!("{url}: expected {expected:?}, got {got:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn the_parser_normalises_numeric_ipv4_spellings() {
        for spelling in [
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.1/",
            "http://127.1/",
            "http://0x7f000001/",
            "http://017700000001/",
            "HTTP://0X7F.0.0.1/",
            "https://127.0.0.1./",
        ] {
            let url = Url::parse(spelling).unwrap();
            assert_eq!(
                url.host(),
                Some(Host::Ipv4(Ipv4Addr::LOCALHOST)),
                "{spelling}"
            );
        }
    }

    #[test]
    fn the_parser_decodes_percent_and_unicode_hosts() {
        let percent = Url::parse("http://%6c%6f%63%61%6c%68%6f%73%74/").unwrap();
        assert_eq!(percent.host(), Some(Host::Domain("localhost")));
        let circled = Url::parse("http://\u{24db}ocalhost/").unwrap();
        assert_eq!(circled.host(), Some(Host::Domain("localhost")));
        let upper = Url::parse("HTTP://LOCALHOST./").unwrap();
        assert_eq!(upper.host(), Some(Host::Domain("localhost.")));
        let mapped = Url::parse("http://[::ffff:127.0.0.1]/").unwrap();
        assert_eq!(
            mapped.host(),
            Some(Host::Ipv6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()))
        );
    }

    #[tokio::test]
    async fn local_names_are_refused_without_resolving() {
        let names = [
            "localhost",
            "localhost.",
            "api.localhost",
            "localhost.localdomain",
            "metadata",
            "metadata.goog",
            "metadata.google.internal",
            "instance-data",
            "instance-data.ec2.internal",
            "intranet",
        ];
        let answers: Vec<(&str, &[&str])> = names.iter().map(|n| (*n, &[PUBLIC_V4][..])).collect();
        let resolver = FakeResolver::new(&answers);
        let guard = guard(&["0.0.0.0/0"], true, resolver.clone());
        for name in names {
            let got = guard.check_url(&format!("https://{name}/hook")).await;
            assert_eq!(got, Err(LocalName), "{name}");
        }
        assert_eq!(resolver.calls(), 0);
    }

    #[tokio::test]
    async fn lookalike_public_names_are_not_mistaken_for_local_ones() {
        let resolver = FakeResolver::new(&[
            ("notlocalhost.example", &[PUBLIC_V4]),
            ("internal.example.com", &[PUBLIC_V4]),
            ("mylocal.example", &[PUBLIC_V4]),
        ]);
        let guard = guard(&[], false, resolver.clone());
        for name in [
            "notlocalhost.example",
            "internal.example.com",
            "mylocal.example",
        ] {
            assert!(guard.check_url(&format!("https://{name}/")).await.is_ok());
        }
        assert_eq!(resolver.calls(), 3);
    }

    #[tokio::test]
    async fn a_mixed_answer_is_refused_whatever_its_order() {
        for answer in [[PUBLIC_V4, "192.168.0.10"], ["192.168.0.10", PUBLIC_V4]] {
            let resolver = FakeResolver::new(&[("mixed.example.com", &answer)]);
            let guard = guard(&[], false, resolver);
            let got = guard.check_url("https://mixed.example.com/").await;
            assert_eq!(got, Err(Address(Private)), "{answer:?}");
        }
    }

    #[tokio::test]
    async fn empty_and_failed_lookups_are_refused() {
        let resolver = FakeResolver::new(&[("empty.example.com", &[])]);
        let guard = guard(&[], false, resolver.clone());
        assert_eq!(
            guard.check_url("https://empty.example.com/").await,
            Err(Unresolved)
        );
        assert_eq!(
            guard.check_url("https://missing.example.com/").await,
            Err(Unresolved)
        );
        assert_eq!(resolver.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_resolver_that_never_answers_is_given_up_on() {
        let guard = NetGuard::with_resolver(&[], false, Arc::new(SilentResolver)).unwrap();
        let started = tokio::time::Instant::now();
        let got = guard.check_url("https://slow.example.com/").await;
        assert_eq!(got, Err(Unresolved));
        assert_eq!(started.elapsed(), LOOKUP_TIMEOUT);
    }

    #[tokio::test]
    async fn public_urls_pass_and_come_back_normalised() {
        let resolver = usual_resolver();
        let guard = guard(&[], false, resolver.clone());
        let cases = [
            ("https://hooks.example.com/x", "https://hooks.example.com/x"),
            (
                "  HTTPS://HOOKS.Example.COM/x?a=1 ",
                "https://hooks.example.com/x?a=1",
            ),
            ("https://[2606:4700::1111]/", "https://[2606:4700::1111]/"),
            (
                "https://93.184.215.14:8443/h",
                "https://93.184.215.14:8443/h",
            ),
            ("https://1572394766/", "https://93.184.215.14/"),
            ("https://[::ffff:5db8:d70e]/", "https://[::ffff:5db8:d70e]/"),
            (
                "https://[64:ff9b::5db8:d70e]/",
                "https://[64:ff9b::5db8:d70e]/",
            ),
            (
                "https://[2002:5db8:d70e::1]/",
                "https://[2002:5db8:d70e::1]/",
            ),
        ];
        for (raw, normalised) in cases {
            let url = guard.check_url(raw).await.unwrap();
            assert_eq!(url.as_str(), normalised);
        }
        assert_eq!(resolver.calls(), 2);
    }

    #[tokio::test]
    async fn plain_http_needs_allow_http() {
        let production = guard(&[], false, usual_resolver());
        assert_eq!(
            production.check_url("http://hooks.example.com/").await,
            Err(PlainHttp)
        );
        let development = guard(&[], true, usual_resolver());
        assert!(development
            .check_url("http://hooks.example.com/")
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn the_allowlist_opens_only_its_networks() {
        let resolver = FakeResolver::new(&[("hooks.example.test", &["127.0.0.1"])]);
        let guard = guard(&["127.0.0.1/32", "fd00:1::/64"], true, resolver);
        assert!(guard.check_url("http://127.0.0.1:9000/").await.is_ok());
        assert!(guard.check_url("http://hooks.example.test/").await.is_ok());
        assert!(guard.check_url("http://[::ffff:127.0.0.1]/").await.is_ok());
        assert!(guard.check_url("http://[fd00:1::5]/").await.is_ok());
        assert_eq!(
            guard.check_url("http://127.0.0.2/").await,
            Err(Address(Loopback))
        );
        assert_eq!(
            guard.check_url("http://[2002:7f00:1::]/").await,
            Err(Address(Loopback))
        );
        assert_eq!(
            guard.check_url("http://10.0.0.1/").await,
            Err(Address(Private))
        );
        assert_eq!(
            guard.check_url("http://[fd00:2::5]/").await,
            Err(Address(UniqueLocal))
        );
    }

    #[tokio::test]
    async fn metadata_needs_an_exact_allowlist_entry() {
        let broad = guard(&["169.254.0.0/16", "100.64.0.0/10"], true, usual_resolver());
        assert!(broad.check_url("http://169.254.10.1/").await.is_ok());
        assert!(broad.check_url("http://100.64.0.1/").await.is_ok());
        for url in [
            "http://169.254.169.254/",
            "http://169.254.170.2/",
            "http://100.100.100.200/",
        ] {
            assert_eq!(broad.check_url(url).await, Err(Address(CloudMetadata)));
        }
        let exact = guard(&["169.254.169.254"], true, usual_resolver());
        assert!(exact.check_url("http://169.254.169.254/").await.is_ok());
        assert_eq!(
            exact.check_url("http://169.254.170.2/").await,
            Err(Address(CloudMetadata))
        );
    }

    #[tokio::test]
    async fn the_allowlist_never_excuses_schemes_credentials_or_local_names() {
        let everything = ["0.0.0.0/0", "::/0"];
        let development = guard(&everything, true, usual_resolver());
        let cases = [
            ("file:///etc/passwd", Scheme),
            ("gopher://127.0.0.1/", Scheme),
            ("http://user:pw@127.0.0.1/", Credentials),
            ("http://localhost/", LocalName),
            ("http://metadata.google.internal/", LocalName),
        ];
        for (url, expected) in cases {
            assert_eq!(development.check_url(url).await, Err(expected), "{url}");
        }
        assert!(development.check_url("http://10.1.2.3/").await.is_ok());
        let production = guard(&everything, false, usual_resolver());
        assert_eq!(
            production.check_url("http://10.1.2.3/").await,
            Err(PlainHttp)
        );
    }

    #[tokio::test]
    async fn allowlist_entries_are_networks_or_addresses() {
        for bad in ["10.0.0.0/33", "not-a-network", "", "127.0.0.1/8/8"] {
            let err = NetGuard::new(&[bad.to_string()], true).unwrap_err();
            assert_eq!(err, BadAllowNetwork(bad.to_string()));
        }
        let guard = guard(&[" 127.0.0.1 "], true, usual_resolver());
        assert!(guard.check_url("http://127.0.0.1/").await.is_ok());
        assert_eq!(
            guard.check_url("http://127.0.0.2/").await,
            Err(Address(Loopback))
        );
    }

    #[test]
    fn is_forbidden_holds_at_the_edges_of_each_range() {
        let forbidden = [
            "0.255.255.255",
            "10.255.255.255",
            "100.64.0.0",
            "100.127.255.255",
            "127.255.255.255",
            "169.254.0.0",
            "172.16.0.0",
            "172.31.255.255",
            "192.0.0.255",
            "192.0.2.255",
            "192.88.99.1",
            "192.168.255.255",
            "198.18.0.0",
            "198.51.100.255",
            "203.0.113.0",
            "224.0.0.0",
            "239.255.255.255",
            "240.0.0.0",
            "255.255.255.254",
            "::",
            "::1",
            "100::ffff",
            "2001:db8:ffff::1",
            "fbff::1",
            "febf::1",
            "ffff::1",
        ];
        let allowed = [
            "1.1.1.1",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.0.3.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.255",
            "203.0.112.255",
            "223.255.255.255",
            "2000::1",
            "2001:db9::1",
            "2606:4700::1111",
            "3ffe::1",
        ];
        for ip in forbidden {
            assert!(
                is_forbidden(ip.parse().unwrap()),
                "{ip} should be forbidden"
            );
        }
        for ip in allowed {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[test]
    fn ipv6_forms_carrying_ipv4_are_judged_by_that_ipv4() {
        let cases: [(&str, Option<AddressKind>); 14] = [
            ("::ffff:10.0.0.1", Some(Private)),
            ("::ffff:93.184.215.14", None),
            ("::ffff:0:192.168.0.1", Some(Private)),
            ("::10.0.0.1", Some(Private)),
            ("::93.184.215.14", Some(Deprecated)),
            ("64:ff9b::100.64.0.1", Some(SharedAddressSpace)),
            ("64:ff9b::93.184.215.14", None),
            ("64:ff9b:1:ffff::127.0.0.1", Some(Loopback)),
            ("2002:a9fe:a9fe::1", Some(CloudMetadata)),
            ("2002:c0a8:101::1", Some(Private)),
            ("2002:5db8:d70e::", None),
            // Teredo with a public server (65.54.227.120) and client 93.184.215.14.
            ("2001:0:4136:e378:8000:63bf:a247:28f1", None),
            // The same server, client 127.0.0.1.
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", Some(Loopback)),
            // Server 192.168.0.1.
            ("2001:0:c0a8:1:8000:63bf:a247:28f1", Some(Private)),
        ];
        for (ip, expected) in cases {
            assert_eq!(classify(ip.parse().unwrap()), expected, "{ip}");
        }
    }

    #[tokio::test]
    async fn refusals_name_no_address_or_host() {
        let guard = guard(&[], true, usual_resolver());
        for url in [
            "http://evil.example.com/",
            "http://10.20.30.40/",
            "http://[fd00:ec2::254]/",
        ] {
            let message = guard.check_url(url).await.unwrap_err().to_string();
            for secret in ["127.0.0.1", "10.20.30.40", "fd00", "evil"] {
                assert!(!message.contains(secret), "{message}");
            }
        }
        assert_eq!(
            Address(CloudMetadata).to_string(),
            "the host is or resolves to a forbidden address (cloud metadata)"
        );
    }

    #[tokio::test]
    async fn the_delivery_resolver_hands_back_exactly_the_checked_addresses() {
        let resolver = FakeResolver::new(&[("hooks.example.com", &[PUBLIC_V4, PUBLIC_V6])]);
        let resolve = CheckedResolve(guard(&[], false, resolver.clone()));
        let name = reqwest13::dns::Name::from_str("hooks.example.com").unwrap();
        let addrs: Vec<SocketAddr> = resolve.resolve(name).await.unwrap().collect();
        let expected: Vec<SocketAddr> = vec![
            SocketAddr::new(PUBLIC_V4.parse().unwrap(), 0),
            SocketAddr::new(PUBLIC_V6.parse().unwrap(), 0),
        ];
        assert_eq!(addrs, expected);
        assert_eq!(resolver.calls(), 1);
    }

    #[tokio::test]
    async fn the_delivery_resolver_refuses_a_mixed_answer_whole() {
        let resolve = CheckedResolve(guard(&[], false, usual_resolver()));
        for (name, expected) in [
            ("rebind.example.com", Address(Private)),
            ("rebind6.example.com", Address(UniqueLocal)),
            ("evil.example.com", Address(Loopback)),
            ("localhost", LocalName),
            ("metadata.google.internal", LocalName),
        ] {
            let name = reqwest13::dns::Name::from_str(name).unwrap();
            let error = resolve.resolve(name).await.err().unwrap();
            assert_eq!(error.downcast_ref::<UnsafeUrl>(), Some(&expected));
        }
    }

    #[tokio::test]
    async fn the_system_resolver_answers_from_the_hosts_file() {
        let ips = SystemResolver.lookup("localhost").await.unwrap();
        assert!(!ips.is_empty());
        assert!(ips.iter().all(|ip| ip.is_loopback()), "{ips:?}");
    }

    /// Accepts one connection on `listener`, reads one request and answers `response`; gives the
    /// request back. Stops by itself after five seconds.
    fn serve_once(listener: TcpListener, response: String) -> JoinHandle<Option<String>> {
        tokio::spawn(async move {
            let serve = async move {
                let (mut stream, _) = listener.accept().await.ok()?;
                let request = read_request(&mut stream).await?;
                stream.write_all(response.as_bytes()).await.ok()?;
                stream.shutdown().await.ok()?;
                Some(request)
            };
            tokio::time::timeout(Duration::from_secs(5), serve)
                .await
                .ok()
                .flatten()
        })
    }

    async fn read_request(stream: &mut TcpStream) -> Option<String> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 || buf.len() > 65_536 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map_or(Some(0), |value| value.trim().parse().ok())?;
        while buf.len() < head_end + length {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Some(String::from_utf8_lossy(&buf).into_owned())
    }

    /// True when nothing connected to `listener` (a connection the client made would be waiting
    /// in the backlog, so accept would return at once).
    async fn never_connected(listener: &TcpListener) -> bool {
        tokio::time::timeout(Duration::from_millis(300), listener.accept())
            .await
            .is_err()
    }

    const OK: &str = "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n";

    #[tokio::test]
    async fn the_client_delivers_to_the_checked_address() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let receiver = serve_once(listener, OK.to_string());
        let resolver = FakeResolver::new(&[("hooks.example.test", &["127.0.0.1"])]);
        let guard = guard(&["127.0.0.1/32"], true, resolver.clone());
        let url = guard
            .check_url(&format!("http://hooks.example.test:{port}/hook"))
            .await
            .unwrap();
        let client = guard.client(DEFAULT_WEBHOOK_TIMEOUT).unwrap();
        let response = client.post(url).body("{\"event\":\"ping\"}").send().await;
        assert_eq!(
            response.unwrap().status(),
            reqwest13::StatusCode::NO_CONTENT
        );
        let request = receiver.await.unwrap().unwrap();
        assert!(request.starts_with("POST /hook HTTP/1.1\r\n"), "{request}");
        assert!(request
            .to_lowercase()
            .contains(&format!("host: hooks.example.test:{port}\r\n")));
        assert!(request.ends_with("{\"event\":\"ping\"}"));
        // One lookup for check_url, one for the connection: reqwest asked nobody else.
        assert_eq!(resolver.calls(), 2);
    }

    #[tokio::test]
    async fn without_the_allowlist_the_client_refuses_and_never_connects() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let resolver = FakeResolver::new(&[("hooks.example.test", &["127.0.0.1"])]);
        let guard = guard(&[], true, resolver.clone());
        let url = format!("http://hooks.example.test:{port}/hook");
        assert_eq!(guard.check_url(&url).await, Err(Address(Loopback)));
        let client = guard.client(DEFAULT_WEBHOOK_TIMEOUT).unwrap();
        let error = client.post(&url).send().await.unwrap_err();
        assert_eq!(refusal(&error), Some(&Address(Loopback)));
        assert!(never_connected(&listener).await);
        assert_eq!(resolver.calls(), 2);
    }

    #[tokio::test]
    async fn the_client_does_not_follow_redirects() {
        // The target of the redirect stands in for the metadata service: it must see nothing.
        let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target_port = target.local_addr().unwrap().port();
        let location = format!("http://127.0.0.1:{target_port}/latest/meta-data/");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let redirect = format!(
            "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        let receiver = serve_once(listener, redirect);
        let guard = guard(&["127.0.0.1/32"], true, usual_resolver());
        let url = guard
            .check_url(&format!("http://127.0.0.1:{port}/hook"))
            .await
            .unwrap();
        let client = guard.client(DEFAULT_WEBHOOK_TIMEOUT).unwrap();
        let response = client.post(url).body("{}").send().await.unwrap();
        assert_eq!(response.status(), reqwest13::StatusCode::FOUND);
        assert_eq!(
            response
                .headers()
                .get("location")
                .unwrap()
                .to_str()
                .unwrap(),
            location
        );
        assert!(receiver.await.unwrap().is_some());
        assert!(never_connected(&target).await);
    }

    #[tokio::test]
    async fn the_production_client_refuses_plain_http_without_connecting() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let resolver = FakeResolver::new(&[("hooks.example.test", &["127.0.0.1"])]);
        let guard = guard(&["127.0.0.1/32"], false, resolver.clone());
        let client = guard.client(Duration::from_secs(2)).unwrap();
        let url = format!("http://hooks.example.test:{port}/hook");
        let error = client.post(&url).send().await.unwrap_err();
        assert!(error.is_builder(), "{error:?}");
        assert!(never_connected(&listener).await);
        assert_eq!(resolver.calls(), 0);
    }
}
