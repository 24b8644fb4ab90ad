//! Where the server may connect on a tenant's behalf (webhook receivers): the egress policy. By default
//! only public unicast addresses: never loopback, private (RFC 1918), shared (CGNAT), link-local (where
//! cloud metadata services answer), unique-local, multicast, documentation or other special-purpose
//! ranges, in any spelling (`127.1`, `0x7f000001` and `[::ffff:127.0.0.1]` are all 127.0.0.1 to the URL
//! parser). Operators may allow listed host names or networks (an on-premises receiver, loopback for
//! development), or turn public addresses off (tests run with loopback only).
//!
//! The policy applies twice: at registration to the URL (its scheme, credentials, length, and an IP
//! literal outside the policy), and at connect time to every address a name resolves to, in the sender's
//! resolver, so a name that resolves elsewhere later (DNS rebinding) is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Longest webhook URL, characters.
pub const MAX_URL_CHARS: usize = 2048;

/// The private networks cameras may be dialled on besides public addresses: RFC 1918 and unique-local.
pub const CAMERA_NETWORKS: [&str; 4] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"];

/// IPv4 networks that are not public unicast (the IANA special-purpose registry).
const SPECIAL_V4: [&str; 15] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
];

/// IPv6 networks inside global unicast (2000::/3) that are not public: translation and tunnelling
/// prefixes that embed other addresses, IETF protocol assignments (Teredo among them), documentation.
const SPECIAL_V6: [&str; 7] =
    ["64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20"];

/// A URL or address the policy refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EgressRefusal {
    /// Not an absolute URL of the protocol (over TLS, or plain to an allowed host) with a host.
    #[error("`url` must be an absolute {}:// URL", .0.tls)]
    NotTls(Scheme),
    /// The plain protocol to a host the operator did not allow.
    #[error("plain {} is allowed only to hosts the operator allowed (egress_allow); use {}", .0.plain, .0.tls)]
    Plain(Scheme),
    /// A user name or password in the URL.
    #[error("`url` must not carry credentials (user:password@)")]
    Credentials,
    /// Longer than [`MAX_URL_CHARS`].
    #[error("`url` is longer than {MAX_URL_CHARS} characters")]
    TooLong,
    /// The address is outside the egress policy.
    #[error("refused by egress policy: {0} is not an allowed address")]
    Address(IpAddr),
    /// A name the policy cannot allow any address of (no public addresses, not listed).
    #[error("refused by egress policy: host `{0}` is not allowed")]
    Host(String),
    /// The name resolved to no allowed address.
    #[error("refused by egress policy: `{0}` resolves to no allowed address")]
    Resolved(String),
}

/// A protocol's two URL schemes: over TLS, and plain (allowed only to hosts the operator allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme {
    /// Over TLS (`https`).
    pub tls: &'static str,
    /// Plain (`http`).
    pub plain: &'static str,
}

impl Scheme {
    /// Webhooks.
    pub const HTTP: Scheme = Scheme { tls: "https", plain: "http" };
    /// MQTT brokers.
    pub const MQTT: Scheme = Scheme { tls: "mqtts", plain: "mqtt" };
}

/// Where outbound connections may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Public unicast addresses are allowed.
    public: bool,
    /// Networks allowed besides public ones.
    networks: Vec<IpNet>,
    /// Host names allowed whatever they resolve to (lowercase, no trailing dot).
    hosts: Vec<String>,
}

impl Default for EgressPolicy {
    /// Public unicast addresses only.
    fn default() -> Self {
        Self { public: true, networks: Vec::new(), hosts: Vec::new() }
    }
}

impl EgressPolicy {
    /// A policy: public unicast addresses when `public`, and the `allow` entries, each a network in CIDR
    /// form (`10.1.2.0/24`), an address (`127.0.0.1`, `::1`) or a host name (`hooks.corp.example`).
    ///
    /// # Errors
    /// The entry that is none of those.
    pub fn new(public: bool, allow: &[String]) -> Result<Self, String> {
        let mut policy = Self { public, networks: Vec::new(), hosts: Vec::new() };
        for entry in allow.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            if let Ok(network) = entry.parse::<IpNet>() {
                policy.networks.push(network.trunc());
            } else if let Ok(address) = entry.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
                policy.networks.push(IpNet::from(address));
            } else if is_host_name(entry) {
                policy.hosts.push(normal_host(entry));
            } else {
                return Err(format!("egress_allow entry `{entry}` is not a network, an address or a host name"));
            }
        }
        Ok(policy)
    }

    /// The same policy with the private networks cameras live on ([`CAMERA_NETWORKS`]) allowed too.
    /// Link-local addresses (where cloud metadata services answer) and loopback stay refused unless
    /// listed.
    pub fn with_camera_networks(mut self) -> Self {
        self.networks.extend(CAMERA_NETWORKS.iter().filter_map(|n| n.parse::<IpNet>().ok()));
        self
    }

    /// Loopback only (127.0.0.0/8, ::1 and `localhost`): what servers started by tests use.
    pub fn loopback_only() -> Self {
        let networks = ["127.0.0.0/8", "::1/128"].iter().filter_map(|n| n.parse().ok()).collect();
        Self { public: false, networks, hosts: vec!["localhost".into()] }
    }

    /// Whether a connection to `address` is allowed (an IPv4-mapped IPv6 address is judged as IPv4).
    pub fn allows_address(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        (self.public && is_public(address)) || self.networks.iter().any(|n| n.contains(&address))
    }

    /// Whether `host` (a name) was allowed by name: its addresses are then not checked.
    pub fn allows_host_by_name(&self, host: &str) -> bool {
        let host = normal_host(host);
        self.hosts.contains(&host)
    }

    /// Whether a name may be looked up at all: with public addresses off, only names the operator listed
    /// are (others are refused without a DNS query).
    pub fn may_resolve(&self, host: &str) -> bool {
        self.public || self.allows_host_by_name(host)
    }

    /// Keeps the addresses of `host` the policy allows (all of them for a listed name).
    ///
    /// # Errors
    /// [`EgressRefusal::Resolved`] when none is left.
    pub fn filter_resolved(&self, host: &str, addresses: Vec<IpAddr>) -> Result<Vec<IpAddr>, EgressRefusal> {
        if self.allows_host_by_name(host) {
            return Ok(addresses);
        }
        let allowed: Vec<IpAddr> = addresses.into_iter().filter(|a| self.allows_address(*a)).collect();
        if allowed.is_empty() { Err(EgressRefusal::Resolved(host.to_string())) } else { Ok(allowed) }
    }

    /// Checks a webhook URL at registration: an absolute https URL (plain http only to an allowed host or
    /// network), no credentials, at most [`MAX_URL_CHARS`], and an IP literal host inside the policy.
    /// Names are checked when they are resolved, at every connection.
    ///
    /// # Errors
    /// The [`EgressRefusal`].
    pub fn check_url(&self, text: &str) -> Result<url::Url, EgressRefusal> {
        self.check_endpoint(text, Scheme::HTTP)
    }

    /// Checks an MQTT broker URL as [`EgressPolicy::check_url`] checks a webhook's: `mqtts://` (TLS), or
    /// plain `mqtt://` only to an allowed host or network; no credentials in the URL (they are settings
    /// of their own, sealed), no path.
    ///
    /// # Errors
    /// The [`EgressRefusal`].
    pub fn check_broker_url(&self, text: &str) -> Result<url::Url, EgressRefusal> {
        let url = self.check_endpoint(text, Scheme::MQTT)?;
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(EgressRefusal::NotTls(Scheme::MQTT));
        }
        Ok(url)
    }

    fn check_endpoint(&self, text: &str, scheme: Scheme) -> Result<url::Url, EgressRefusal> {
        let wrong = EgressRefusal::NotTls(scheme);
        if text.chars().count() > MAX_URL_CHARS {
            return Err(EgressRefusal::TooLong);
        }
        let url = url::Url::parse(text).map_err(|_| wrong.clone())?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EgressRefusal::Credentials);
        }
        let host = url_host(&url).ok_or(wrong.clone())?;
        let explicitly_allowed = self.check_host(&host).map_err(|refusal| match refusal {
            EgressRefusal::NotTls(_) => wrong.clone(),
            other => other,
        })?;
        match url.scheme() {
            tls if tls == scheme.tls => Ok(url),
            plain if plain == scheme.plain && explicitly_allowed => Ok(url),
            plain if plain == scheme.plain => Err(EgressRefusal::Plain(scheme)),
            _ => Err(wrong),
        }
    }

    /// Checks a URL's host before any lookup: a name must be a DNS name the policy may resolve, an IP
    /// literal must be inside the policy. Whether the operator allowed the host explicitly (by name or
    /// network).
    ///
    /// # Errors
    /// [`EgressRefusal::NotTls`] for a host that is no DNS name; [`EgressRefusal::Host`],
    /// [`EgressRefusal::Address`] outside the policy.
    pub fn check_host<S: AsRef<str>>(&self, host: &url::Host<S>) -> Result<bool, EgressRefusal> {
        match host {
            url::Host::Domain(name) => {
                let name = name.as_ref();
                if !is_host_name(name) {
                    return Err(EgressRefusal::NotTls(Scheme::HTTP));
                }
                if !self.may_resolve(name) {
                    return Err(EgressRefusal::Host(name.to_string()));
                }
                Ok(self.allows_host_by_name(name))
            }
            url::Host::Ipv4(v4) => self.check_literal(IpAddr::V4(*v4)),
            url::Host::Ipv6(v6) => self.check_literal(IpAddr::V6(*v6)),
        }
    }

    /// An IP literal: refused outside the policy; whether the operator allowed it explicitly (by network).
    fn check_literal(&self, address: IpAddr) -> Result<bool, EgressRefusal> {
        if !self.allows_address(address) {
            return Err(EgressRefusal::Address(canonical(address)));
        }
        let address = canonical(address);
        Ok(self.networks.iter().any(|n| n.contains(&address)))
    }
}

/// The host of a URL as an address or a name, whatever its scheme (the URL parser leaves the host of a
/// scheme it does not know, `rtsp` or `mqtt`, unparsed: `127.0.0.1` would read as a name).
pub fn url_host(url: &url::Url) -> Option<url::Host<String>> {
    url::Host::parse(url.host_str()?).ok()
}

/// The host part of a URL as the policy compares names: lowercase, without a trailing dot.
fn normal_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// A DNS name of letters, digits, hyphens and dots (what a URL parser leaves of an internationalised one).
fn is_host_name(text: &str) -> bool {
    let text = text.trim_end_matches('.');
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        && text.parse::<IpAddr>().is_err()
}

/// An IPv4-mapped or IPv4-compatible IPv6 address as its IPv4 address; others unchanged.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Whether `address` is public unicast: not in any special-purpose range.
fn is_public(address: IpAddr) -> bool {
    match canonical(address) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(address: Ipv4Addr) -> bool {
    let address = IpAddr::V4(address);
    !SPECIAL_V4.iter().filter_map(|n| n.parse::<IpNet>().ok()).any(|n| n.contains(&address))
}

fn is_public_v6(address: Ipv6Addr) -> bool {
    // Global unicast is 2000::/3; everything else (loopback, unspecified, IPv4-compatible, unique-local,
    // link-local, site-local, multicast) is not public.
    let global: IpNet = match "2000::/3".parse() {
        Ok(net) => net,
        Err(_) => return false,
    };
    let address = IpAddr::V6(address);
    global.contains(&address)
        && !SPECIAL_V6.iter().filter_map(|n| n.parse::<IpNet>().ok()).any(|n| n.contains(&address))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_in_every_spelling() {
        let policy = EgressPolicy::default();
        for url in [
            "https://127.0.0.1/x",
            "https://127.1/x",
            "https://0x7f000001/x",
            "https://2130706433/x",
            "https://0177.0.0.1/x",
            "https://[::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://[::ffff:7f00:1]/x",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/",
            "https://172.16.5.4/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://0.0.0.0/",
            "https://[::]/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
            "https://[2002:7f00:1::]/",
            "https://[64:ff9b::a9fe:a9fe]/",
        ] {
            assert!(matches!(policy.check_url(url), Err(EgressRefusal::Address(_))), "{url}");
        }
        assert!(policy.check_url("https://93.184.215.14/hook").is_ok());
        assert!(policy.check_url("https://[2606:4700::1111]/hook").is_ok());
        assert!(policy.check_url("https://hooks.example.org/facegate").is_ok(), "names are checked at connect time");
    }

    #[test]
    fn urls_are_https_without_credentials_and_bounded() {
        let policy = EgressPolicy::default();
        assert_eq!(policy.check_url("http://hooks.example.org/in"), Err(EgressRefusal::Plain(Scheme::HTTP)));
        assert_eq!(
            policy.check_url("http://127.0.0.1:9000/in"),
            Err(EgressRefusal::Address("127.0.0.1".parse().expect("ip")))
        );
        assert_eq!(policy.check_url("https://user:secret@hooks.example.org/"), Err(EgressRefusal::Credentials));
        assert_eq!(policy.check_url("https://user@hooks.example.org/"), Err(EgressRefusal::Credentials));
        let long = format!("https://hooks.example.org/{}", "a".repeat(MAX_URL_CHARS));
        assert_eq!(policy.check_url(&long), Err(EgressRefusal::TooLong));
        for bad in ["ftp://x", "not a url", "https://", "file:///etc/passwd", "https://exa mple.org/"] {
            assert!(policy.check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn brokers_are_mqtts_or_plain_mqtt_to_allowed_hosts() {
        let policy = EgressPolicy::default();
        assert!(policy.check_broker_url("mqtts://broker.example.org:8883").is_ok());
        assert_eq!(policy.check_broker_url("mqtt://broker.example.org"), Err(EgressRefusal::Plain(Scheme::MQTT)));
        assert_eq!(
            policy.check_broker_url("mqtts://127.0.0.1:8883"),
            Err(EgressRefusal::Address("127.0.0.1".parse().expect("ip"))),
            "an address literal of an unknown scheme is still an address"
        );
        assert_eq!(policy.check_broker_url("mqtts://u:p@broker.example.org"), Err(EgressRefusal::Credentials));
        for bad in ["https://broker.example.org", "mqtts://broker.example.org/topic", "mqtts://", "mqtts://b?x=1"] {
            assert!(policy.check_broker_url(bad).is_err(), "{bad}");
        }
        let local = EgressPolicy::loopback_only();
        assert!(local.check_broker_url("mqtt://127.0.0.1:1883").is_ok());
        assert!(local.check_broker_url("mqtt://[::1]:1883").is_ok());
    }

    #[test]
    fn operators_allow_networks_and_hosts() {
        let allow = ["10.1.2.0/24".to_string(), "::1".to_string(), "Hooks.Corp.Example.".to_string()];
        let policy = EgressPolicy::new(true, &allow).expect("policy");
        assert!(policy.check_url("http://10.1.2.3:8080/in").is_ok(), "listed network, plain http allowed");
        assert!(policy.check_url("https://10.1.3.3/in").is_err());
        assert!(policy.check_url("http://[::1]:9000/in").is_ok());
        assert!(policy.check_url("http://hooks.corp.example/in").is_ok(), "listed name");
        let resolved = policy.filter_resolved("hooks.corp.example", vec!["10.9.9.9".parse().expect("ip")]);
        assert!(resolved.is_ok(), "a listed name may resolve anywhere");
        let rebound = policy.filter_resolved("evil.example", vec!["127.0.0.1".parse().expect("ip")]);
        assert_eq!(rebound, Err(EgressRefusal::Resolved("evil.example".into())));
        let mixed = policy
            .filter_resolved("mixed.example", vec!["192.168.0.1".parse().expect("ip"), "8.8.8.8".parse().expect("ip")]);
        assert_eq!(mixed, Ok(vec!["8.8.8.8".parse().expect("ip")]), "only the allowed addresses are dialled");
        assert!(EgressPolicy::new(true, &["not a/network".to_string()]).is_err());
    }

    #[test]
    fn loopback_only_refuses_everything_else_before_resolving() {
        let policy = EgressPolicy::loopback_only();
        assert!(policy.check_url("http://127.0.0.1:9000/in").is_ok());
        assert!(policy.check_url("https://93.184.215.14/").is_err());
        assert!(!policy.allows_address("8.8.8.8".parse().expect("ip")));
        assert!(policy.allows_address("::ffff:127.0.0.1".parse().expect("ip")));
        assert!(!policy.may_resolve("hooks.example.org"), "an unlisted name is never looked up");
        assert_eq!(
            policy.check_url("https://hooks.example.org/"),
            Err(EgressRefusal::Host("hooks.example.org".into()))
        );
        assert!(policy.check_url("http://localhost:9000/in").is_ok());
        let closed = EgressPolicy::new(false, &[]).expect("policy");
        assert_eq!(
            closed.check_url("https://hooks.example.org/"),
            Err(EgressRefusal::Host("hooks.example.org".into()))
        );
    }
}
