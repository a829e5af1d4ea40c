//! Pages fetched for ingestion, guarded: only http(s); every address a host resolves to, on the
//! first request and on every redirect, must be public (loopback, private, link-local, carrier
//! NAT, multicast, unspecified and cloud metadata addresses are refused unless
//! `sources.allow_networks` admits them), since the resolver that checks them is the one the
//! connection uses; robots.txt honoured (RFC 9309, cached an hour per origin); redirects
//! followed by hand, each hop checked again; a size cap read as the body streams, a total and a
//! stall timeout; conditional requests (ETag, Last-Modified) so an unchanged page costs one
//! request and no body.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use ipnet::IpNet;
use reqwest::StatusCode;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{
    CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LOCATION,
};
use reqwest::{Client, Url};

use crate::config::SourcesConfig;
use base::error::{Error, Result};
use parse::site::robots::Robots;

/// Our product token in robots.txt and the User-Agent.
const PRODUCT: &str = "lariat";
const ROBOTS_TTL: Duration = Duration::from_secs(3600);

/// What a page's last fetch said, sent back so an unchanged page answers 304.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// A fetched page.
#[derive(Debug, Clone)]
pub struct Page {
    /// Where it was found, after redirects.
    pub url: Url,
    /// The media type, without parameters, lower case (`text/html`).
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub validators: Validators,
}

/// How a fetch ended.
#[derive(Debug, Clone)]
pub enum Fetched {
    Page(Page),
    /// 304: as it was.
    NotModified,
    /// 404 or 410: the page is gone.
    Gone,
}

/// Whether an address may be fetched by default: public unicast only.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                // carrier-grade NAT, "this network", benchmarking, reserved
                || (a == 100 && (64..128).contains(&b))
                || a == 0
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // unique local fc00::/7, link-local fe80::/10, documentation 2001:db8::/32
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
                // NAT64 and 6to4 can reach IPv4 addresses behind them
                || first == 0x0064
                || first == 0x2002)
        }
    }
}

/// What every refusal of a fetch target says first; curators see only this, admins the rule.
pub const ADDRESS_REFUSED: &str = "address not allowed";

/// The addresses a fetch may connect to.
#[derive(Debug, Clone)]
struct Guard {
    allow: Arc<Vec<IpNet>>,
}

impl Guard {
    fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.allow.iter().any(|net| net.contains(&ip))
    }

    fn refuse(ip: IpAddr) -> Error {
        Error::Forbidden(format!(
            "{ADDRESS_REFUSED}: {ip} is not a public address (sources.allow_networks admits a \
             network on purpose)"
        ))
    }
}

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            // one forbidden address refuses the host: it could be picked on another try
            if let Some(bad) = addrs.iter().find(|a| !guard.permits(a.ip())) {
                return Err(
                    Box::new(Guard::refuse(bad.ip())) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The fetcher: one client, its guard, robots.txt per origin.
pub struct Fetcher {
    client: Client,
    guard: Guard,
    /// The ports fetches may go to (inclusive ranges).
    ports: Vec<(u16, u16)>,
    config: SourcesConfig,
    robots: Mutex<HashMap<String, (Instant, Arc<Robots>)>>,
}

impl Fetcher {
    pub fn new(config: &SourcesConfig) -> Result<Self> {
        let allow = config
            .allow_networks
            .iter()
            .map(|raw| {
                raw.parse::<IpNet>()
                    .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        Error::InvalidInput(format!(
                            "sources.allow_networks: {raw:?} is not an address or network"
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let guard = Guard {
            allow: Arc::new(allow),
        };
        let ports = config
            .allowed_ports
            .iter()
            .map(|raw| {
                let bad = || {
                    Error::InvalidInput(format!(
                        "sources.allowed_ports: {raw:?} is not a port or a range of ports"
                    ))
                };
                let (low, high) = raw
                    .trim()
                    .split_once('-')
                    .unwrap_or((raw.trim(), raw.trim()));
                let low: u16 = low.trim().parse().map_err(|_| bad())?;
                let high: u16 = high.trim().parse().map_err(|_| bad())?;
                if low == 0 || low > high {
                    return Err(bad());
                }
                Ok((low, high))
            })
            .collect::<Result<Vec<_>>>()?;
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(guard.clone()))
            .connect_timeout(Duration::from_secs(config.timeout_secs.clamp(1, 10)))
            .read_timeout(Duration::from_secs(config.stall_secs.max(1)))
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            .user_agent(format!(
                "{PRODUCT}/{} (knowledge base ingestion)",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| Error::Internal(format!("the HTTP client: {e}")))?;
        Ok(Self {
            client,
            guard,
            ports,
            config: config.clone(),
            robots: Mutex::new(HashMap::new()),
        })
    }

    /// A URL as sources take it: absolute, http or https, no credentials.
    pub fn parse_url(raw: &str) -> Result<Url> {
        let url = Url::parse(raw.trim())
            .map_err(|e| Error::InvalidInput(format!("{raw:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::InvalidInput(format!(
                "{raw:?}: only http and https URLs are fetched"
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::InvalidInput(format!("{raw:?} names no host")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::InvalidInput(format!(
                "{raw:?}: credentials in a URL are refused"
            )));
        }
        Ok(url)
    }

    /// Only the allowed ports are fetched from (a public host's other services are not ours to
    /// probe).
    fn check_port(&self, url: &Url) -> Result<()> {
        let port = url.port_or_known_default().unwrap_or(0);
        if self
            .ports
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&port))
        {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "{ADDRESS_REFUSED}: port {port} is not in sources.allowed_ports"
            )))
        }
    }

    /// A host given as an address is not resolved, so it is checked here.
    fn check_literal(&self, url: &Url) -> Result<()> {
        let host = url.host_str().unwrap_or("");
        let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        else {
            return Ok(());
        };
        if self.guard.permits(ip) {
            Ok(())
        } else {
            Err(Guard::refuse(ip))
        }
    }

    /// Fetches `url`, following up to `sources.max_redirects` redirects, each checked like the
    /// first request; `prior` makes the request conditional.
    pub async fn fetch(&self, url: &Url, prior: Option<&Validators>) -> Result<Fetched> {
        let mut url = url.clone();
        for _ in 0..=self.config.max_redirects {
            Self::parse_url(url.as_str())?;
            self.check_port(&url)
                .and_then(|()| self.check_literal(&url))
                .map_err(|e| Error::Forbidden(format!("{url}: {e}")))?;
            if !self.robots_allow(&url).await? {
                return Err(Error::Forbidden(format!(
                    "{url}: the site's robots.txt disallows it"
                )));
            }
            let mut request = self.client.get(url.clone());
            if let Some(v) = prior {
                if let Some(etag) = &v.etag {
                    request = request.header(IF_NONE_MATCH, etag);
                }
                if let Some(at) = &v.last_modified {
                    request = request.header(IF_MODIFIED_SINCE, at);
                }
            }
            let response = request.send().await.map_err(|e| failed(&url, e))?;
            let status = response.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| {
                        Error::Upstream(format!("{url}: a redirect ({status}) without a Location"))
                    })?;
                url = url.join(location).map_err(|e| {
                    Error::Upstream(format!("{url}: redirects to a bad Location: {e}"))
                })?;
                continue;
            }
            return match status {
                StatusCode::NOT_MODIFIED => Ok(Fetched::NotModified),
                StatusCode::NOT_FOUND | StatusCode::GONE => Ok(Fetched::Gone),
                s if s.is_success() => self.read(url, response).await.map(Fetched::Page),
                s => Err(Error::Upstream(format!("{url} answered {s}"))),
            };
        }
        Err(Error::Upstream(format!(
            "{url}: more than {} redirects",
            self.config.max_redirects
        )))
    }

    /// The body, up to `sources.max_bytes`.
    async fn read(&self, url: Url, response: reqwest::Response) -> Result<Page> {
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(CONTENT_TYPE)
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let validators = Validators {
            etag: header(ETAG),
            last_modified: header(LAST_MODIFIED),
        };
        let max = self.config.max_bytes;
        if response.content_length().is_some_and(|n| n > max) {
            return Err(too_large(&url, max));
        }
        let mut bytes = Vec::new();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| failed(&url, e))?;
            if (bytes.len() + chunk.len()) as u64 > max {
                return Err(too_large(&url, max));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Page {
            url,
            content_type,
            bytes,
            validators,
        })
    }

    /// Whether the origin's robots.txt lets us fetch `url` (no robots.txt, or a 4xx for it:
    /// yes; a 5xx or no answer: no, as RFC 9309 says).
    async fn robots_allow(&self, url: &Url) -> Result<bool> {
        let origin = url.origin().ascii_serialization();
        let cached = {
            let robots = self.robots.lock().unwrap_or_else(|p| p.into_inner());
            robots
                .get(&origin)
                .filter(|(at, _)| at.elapsed() < ROBOTS_TTL)
                .map(|(_, r)| r.clone())
        };
        let robots = match cached {
            Some(r) => r,
            None => {
                let robots = Arc::new(self.fetch_robots(url).await?);
                let mut all = self.robots.lock().unwrap_or_else(|p| p.into_inner());
                if all.len() > 1000 {
                    all.clear();
                }
                all.insert(origin, (Instant::now(), robots.clone()));
                robots
            }
        };
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        Ok(robots.allows(&path))
    }

    /// The origin's robots.txt; a host that cannot be reached (or is refused) is an error, as
    /// its pages would be.
    async fn fetch_robots(&self, url: &Url) -> Result<Robots> {
        let robots_url = url
            .join("/robots.txt")
            .map_err(|e| Error::InvalidInput(format!("{url}: {e}")))?;
        let disallow_all = || Robots::parse("User-agent: *\nDisallow: /\n", PRODUCT);
        let response = self
            .client
            .get(robots_url.clone())
            .send()
            .await
            .map_err(|e| failed(&robots_url, e))?;
        let status = response.status();
        if status.is_success() {
            // robots.txt past 500 KiB is cut there, as RFC 9309 allows
            let mut text = Vec::new();
            let mut body = response.bytes_stream();
            while let Some(Ok(chunk)) = body.next().await {
                text.extend_from_slice(&chunk);
                if text.len() > 500 * 1024 {
                    break;
                }
            }
            Ok(Robots::parse(&String::from_utf8_lossy(&text), PRODUCT))
        } else if status.is_client_error() || status.is_redirection() {
            Ok(Robots::allow_all())
        } else {
            // a server error: assume everything is disallowed (RFC 9309, 2.3.1.4)
            Ok(disallow_all())
        }
    }
}

fn too_large(url: &Url, max: u64) -> Error {
    Error::InvalidInput(format!(
        "{url} is larger than {max} bytes (sources.max_bytes)"
    ))
}

/// A transport failure, with the guard's refusal told as itself.
fn failed(url: &Url, e: reqwest::Error) -> Error {
    let mut source: Option<&dyn std::error::Error> = Some(&e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<Error>() {
            return Error::Forbidden(format!("{url}: {refused}"));
        }
        source = s.source();
    }
    if e.is_timeout() {
        return Error::Upstream(format!("{url}: no complete answer in time"));
    }
    Error::Upstream(format!("{url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.215.14",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        let guard = Guard {
            allow: Arc::new(vec!["127.0.0.0/8".parse().unwrap()]),
        };
        assert!(guard.permits("127.0.0.1".parse().unwrap()));
        assert!(!guard.permits("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn urls_are_http_without_credentials() {
        assert!(Fetcher::parse_url("https://example.com/a?b=c").is_ok());
        for bad in [
            "file:///etc/passwd",
            "ftp://example.com/x",
            "gopher://x",
            "https://user:pw@example.com/",
            "not a url",
            "http://",
        ] {
            assert!(Fetcher::parse_url(bad).is_err(), "{bad}");
        }
    }
}
