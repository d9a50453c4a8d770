//! Access control values: the address lists of `only_from`/`no_access` and the intervals
//! of `access_times`.
//!
//! Patterns are turned into address masks when the configuration loads, including host
//! and network names, so that deciding on a connection never waits for a name service.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::files::Files;

/// One address pattern as written, with the networks it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPattern {
    /// The pattern as the configuration wrote it.
    pub text: String,
    pub networks: Vec<Network>,
}

/// An address and how many leading bits of it must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub address: IpAddr,
    pub prefix: u8,
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_match(
                u128::from(u32::from(net)) << 96,
                u128::from(u32::from(ip)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_match(u128::from(net), u128::from(ip), self.prefix)
            }
            _ => false,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

fn prefix_match(a: u128, b: u128, prefix: u8) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix.min(128)))
    };
    a & mask == b & mask
}

/// Clients of a dual-stack socket appear as `::ffff:a.b.c.d`; IPv4 patterns must still
/// match them.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// The value of `only_from` or `no_access`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressList {
    pub patterns: Vec<AddressPattern>,
}

impl AddressList {
    /// True if any pattern covers the address.
    pub fn matches(&self, ip: IpAddr) -> bool {
        self.patterns
            .iter()
            .any(|p| p.networks.iter().any(|n| n.contains(ip)))
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

impl fmt::Display for AddressList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = self.patterns.iter().map(|p| p.text.as_str()).collect();
        f.write_str(&words.join(" "))
    }
}

/// Reads one `only_from`/`no_access` word.
pub(crate) fn parse_pattern(text: &str, files: &dyn Files) -> Result<AddressPattern, String> {
    let networks = networks_of(text, files)?;
    Ok(AddressPattern {
        text: text.to_owned(),
        networks,
    })
}

fn networks_of(text: &str, files: &dyn Files) -> Result<Vec<Network>, String> {
    if let Some((address, prefix)) = text.split_once('/') {
        return cidr(text, address, prefix).map(|n| vec![n]);
    }
    if text.contains('{') || text.contains('}') {
        return factorised(text);
    }
    if text.contains(',') {
        return Err(format!("'{text}': a ',' is only allowed inside {{...}}"));
    }
    if let Ok(v4) = text.parse::<Ipv4Addr>() {
        return Ok(vec![wildcard_v4(v4.octets())]);
    }
    if let Ok(v6) = text.parse::<Ipv6Addr>() {
        return Ok(vec![Network {
            address: IpAddr::V6(v6),
            prefix: 128,
        }]);
    }
    if text.starts_with('.') {
        return Err(format!(
            "'{text}': domain patterns need a reverse DNS lookup for every connection, which \
             kinetd does not do; list the addresses or networks instead"
        ));
    }
    if !text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(format!(
            "'{text}' is not an address, network, host or network name"
        ));
    }
    if let Some(network) = network_name(text, files) {
        return Ok(vec![network]);
    }
    host(text, files)
}

fn cidr(text: &str, address: &str, prefix: &str) -> Result<Network, String> {
    let bad = || format!("'{text}' is not a valid network (ADDRESS/BITS)");
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    let address: IpAddr = address.parse().map_err(|_| bad())?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(format!(
            "'{text}': an {} prefix has at most {max} bits",
            family(address)
        ));
    }
    Ok(Network { address, prefix })
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// `10.1.0.0` stands for 10.1.*.*: trailing zero octets are wildcards.
fn wildcard_v4(octets: [u8; 4]) -> Network {
    let significant = octets.iter().rposition(|&o| o != 0).map_or(0, |i| i + 1);
    let prefix = u8::try_from(significant * 8).unwrap_or(32);
    Network {
        address: IpAddr::V4(Ipv4Addr::from(octets)),
        prefix,
    }
}

/// `a.b.c.{x,y,z}`: one network per element, with the wildcard rule applied to each.
fn factorised(text: &str) -> Result<Vec<Network>, String> {
    let bad = || format!("'{text}' is not a valid factorised address (a.b.c.{{x,y,z}})");
    let (head, rest) = text.split_once('{').ok_or_else(bad)?;
    let list = rest.strip_suffix('}').ok_or_else(bad)?;
    let head = head.strip_suffix('.').ok_or_else(bad)?;
    let prefix: Vec<u8> = head
        .split('.')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    if prefix.is_empty() || prefix.len() > 3 || list.contains(['{', '}']) {
        return Err(bad());
    }
    let mut networks = Vec::new();
    for element in list.split(',') {
        let element: u8 = element.trim().parse().map_err(|_| bad())?;
        let mut octets = [0u8; 4];
        octets[..prefix.len()].copy_from_slice(&prefix);
        octets[prefix.len()] = element;
        let mut network = wildcard_v4(octets);
        // The element itself is significant even when it is 0.
        network.prefix = network
            .prefix
            .max(u8::try_from((prefix.len() + 1) * 8).unwrap_or(32));
        networks.push(network);
    }
    Ok(networks)
}

/// A name from /etc/networks: `name number [aliases...]`, where the number has the
/// significant octets only (`127`, `169.254`).
fn network_name(name: &str, files: &dyn Files) -> Option<Network> {
    let text = files.read(std::path::Path::new("/etc/networks")).ok()?;
    let text = String::from_utf8_lossy(&text);
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(first), Some(number)) = (words.next(), words.next()) else {
            continue;
        };
        if first != name && !words.any(|alias| alias == name) {
            continue;
        }
        let parts: Vec<u8> = number
            .split('.')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        if parts.is_empty() || parts.len() > 4 {
            return None;
        }
        let mut octets = [0u8; 4];
        octets[..parts.len()].copy_from_slice(&parts);
        return Some(wildcard_v4(octets));
    }
    None
}

/// A host name, looked up once now; each of its addresses matches exactly.
fn host(name: &str, files: &dyn Files) -> Result<Vec<Network>, String> {
    let addresses = files
        .resolve_host(name)
        .map_err(|e| format!("host name '{name}' could not be resolved: {e}"))?;
    let mut networks: Vec<Network> = Vec::new();
    for address in addresses {
        let ip = canonical(address);
        let prefix = if ip.is_ipv4() { 32 } else { 128 };
        let network = Network {
            address: ip,
            prefix,
        };
        if !networks.contains(&network) {
            networks.push(network);
        }
    }
    if networks.is_empty() {
        return Err(format!("host name '{name}' has no addresses"));
    }
    Ok(networks)
}

/// A time of day, to the minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay {
    pub hour: u8,
    pub minute: u8,
}

impl TimeOfDay {
    fn minutes(self) -> u16 {
        u16::from(self.hour) * 60 + u16::from(self.minute)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{:02}", self.hour, self.minute)
    }
}

/// The value of `access_times`: intervals within one day, both ends included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTimes {
    pub intervals: Vec<(TimeOfDay, TimeOfDay)>,
}

impl AccessTimes {
    /// True if the time falls inside some interval.
    pub fn contains(&self, time: TimeOfDay) -> bool {
        let now = time.minutes();
        self.intervals
            .iter()
            .any(|(start, end)| start.minutes() <= now && now <= end.minutes())
    }
}

impl fmt::Display for AccessTimes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<String> = self
            .intervals
            .iter()
            .map(|(s, e)| format!("{s}-{e}"))
            .collect();
        f.write_str(&words.join(" "))
    }
}

/// Reads `access_times` words. Hours run 0 to 23 and an interval cannot wrap past
/// midnight, as in xinetd (whose own manual's `12:00-24:00` it rejects).
pub(crate) fn parse_times(words: &[String]) -> Result<AccessTimes, String> {
    let mut intervals = Vec::new();
    for word in words {
        let bad = || format!("'{word}' is not an interval HH:MM-HH:MM");
        let (start, end) = word.split_once('-').ok_or_else(bad)?;
        let start = time_of_day(start).ok_or_else(bad)?;
        let end = time_of_day(end).ok_or_else(bad)?;
        if start >= end {
            return Err(format!(
                "'{word}': the interval must end after it starts (it cannot wrap past \
                 midnight; split it in two)"
            ));
        }
        intervals.push((start, end));
    }
    Ok(AccessTimes { intervals })
}

fn time_of_day(text: &str) -> Option<TimeOfDay> {
    let (hour, minute) = text.split_once(':')?;
    let all_digits =
        |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(hour) || !all_digits(minute) {
        return None;
    }
    let hour: u8 = hour.parse().ok()?;
    let minute: u8 = minute.parse().ok()?;
    (hour <= 23 && minute <= 59).then_some(TimeOfDay { hour, minute })
}
