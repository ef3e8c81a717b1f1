//! Masking of personal data for audit metadata, logs and notifications to third parties.

use std::net::IpAddr;

/// `jane.doe@example.com` → `j***@e***.com`.
pub fn email(addr: &str) -> String {
    let (local, domain) = match addr.rsplit_once('@') {
        Some(p) => p,
        None => return "***".into(),
    };
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    let (host, tld) = match domain.rsplit_once('.') {
        Some((h, t)) => (h, format!(".{t}")),
        None => (domain, String::new()),
    };
    format!("{}***@{}***{}", first(local), first(host), tld)
}

/// IPv4 with the last octet zeroed; IPv6 cut to its /48.
pub fn ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::", s[0], s[1], s[2])
        }
    }
}

/// A person's display name as shown to someone else: as they chose it, unless it holds an email
/// address (someone who gave their address as their name), which is masked like one.
pub fn display_name(n: &str) -> String {
    if n.contains('@') {
        email(n)
    } else {
        n.to_string()
    }
}

/// A person's name reduced to its initial.
pub fn name(n: &str) -> String {
    n.chars()
        .next()
        .map(|c| format!("{c}***"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks() {
        assert_eq!(super::email("jane.doe@example.com"), "j***@e***.com");
        assert_eq!(
            super::ip("203.0.113.77".parse().expect("ip")),
            "203.0.113.0"
        );
        assert_eq!(
            super::ip("2001:db8:1:2::5".parse().expect("ip")),
            "2001:db8:1::"
        );
        assert_eq!(super::name("Alice"), "A***");
    }
}
