//! How lariat talks to a site over HTTP, whatever the page: only to the configured origin and
//! only where robots.txt allows (every request, every redirect, every form action), within the
//! per-site rate limit, waiting out `Retry-After`, retrying reads on 5xx, and following
//! redirects itself so that none leaves the site and no write is ever sent twice. Each failure
//! says whether the request may have reached the site ([`SendError::sent`]).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::SiteSettings;
use base::{Error, Result};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::{Method, StatusCode, Url};
use tokio::sync::Mutex;

use parse::site::robots::Robots;

/// Largest page read.
const MAX_PAGE_BYTES: usize = 2 * 1024 * 1024;
/// Attempts for a request that meets 429 (or, for reads, 5xx and connection failures).
const ATTEMPTS: u32 = 4;
/// How long a robots.txt is trusted.
const ROBOTS_TTL: Duration = Duration::from_secs(3600);
/// Redirects followed for one request.
const MAX_REDIRECTS: usize = 5;

/// A fetched page.
pub(super) struct Page {
    pub url: Url,
    pub status: StatusCode,
    pub html: String,
}

/// A request that came to no page.
#[derive(Debug)]
pub(super) struct SendError {
    pub error: Error,
    /// The request may have reached the site (a write may have been acted on). `false` only
    /// when it provably never left: refused here, or the connection was never made, or the
    /// site answered 429 (it did not process it).
    pub sent: bool,
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        e.error
    }
}

fn not_sent(error: Error) -> SendError {
    SendError { error, sent: false }
}

pub(super) struct Transport {
    /// The site's name, as errors cite it.
    name: String,
    /// The robots.txt product token lariat answers to.
    product: String,
    base: Url,
    client: reqwest::Client,
    limiter: DefaultDirectRateLimiter,
    max_retry_wait_secs: u64,
    robots: Mutex<Option<(Instant, Arc<Robots>)>>,
}

impl Transport {
    pub fn new(
        name: &str,
        user_agent: &str,
        base: Url,
        settings: &SiteSettings,
    ) -> std::result::Result<Self, String> {
        if !matches!(base.scheme(), "http" | "https") {
            return Err(format!("base URL {base} must be http or https"));
        }
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .user_agent(user_agent)
            // redirects are followed here, by `follow`, never blindly
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(settings.timeout_secs))
            .connect_timeout(Duration::from_secs(settings.timeout_secs.min(10)))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let per_minute = NonZeroU32::new(settings.requests_per_minute).unwrap_or(NonZeroU32::MIN);
        Ok(Self {
            name: name.to_owned(),
            product: user_agent.split('/').next().unwrap_or("").to_owned(),
            base,
            client,
            limiter: RateLimiter::direct(Quota::per_minute(per_minute)),
            max_retry_wait_secs: settings.max_retry_wait_secs,
            robots: Mutex::new(None),
        })
    }

    /// `path` (with `{id}` filled in) on the site.
    pub fn url(&self, path: &str, id: Option<&str>) -> Result<Url> {
        let path = match id {
            Some(id) => path.replace("{id}", id),
            None => path.to_owned(),
        };
        self.base
            .join(&path)
            .map_err(|e| Error::InvalidInput(format!("bad site path {path:?}: {e}")))
    }

    /// Whether `url` is on the site (scheme, host and port of the base URL).
    pub fn on_site(&self, url: &Url) -> bool {
        url.origin() == self.base.origin()
    }

    async fn robots(&self) -> Result<Arc<Robots>> {
        let mut cached = self.robots.lock().await;
        if let Some((at, r)) = cached.as_ref()
            && at.elapsed() < ROBOTS_TTL
        {
            return Ok(r.clone());
        }
        let url = self.url("/robots.txt", None)?;
        self.limiter.until_ready().await;
        let robots = match self.client.get(url).send().await {
            Ok(r) if r.status().is_success() => {
                Robots::parse(&r.text().await.unwrap_or_default(), &self.product)
            }
            Ok(r) if r.status().is_client_error() => Robots::allow_all(),
            // unreachable, failing or redirecting: everything counts as disallowed (RFC 9309);
            // ask again next time
            Ok(r) => return Err(self.no_robots(r.status().to_string())),
            Err(e) => return Err(self.no_robots(e.to_string())),
        };
        let robots = Arc::new(robots);
        *cached = Some((Instant::now(), robots.clone()));
        Ok(robots)
    }

    fn no_robots(&self, why: String) -> Error {
        Error::Upstream(format!(
            "cannot read {}'s robots.txt ({why}); lariat fetches nothing from it until it can",
            self.name
        ))
    }

    /// Refuses a URL off the site or one robots.txt disallows.
    async fn check(&self, url: &Url) -> Result<()> {
        if !self.on_site(url) {
            return Err(Error::Forbidden(format!(
                "{} pointed lariat at {}, which is not the site ({}); nothing was sent there",
                self.name,
                url.origin().ascii_serialization(),
                self.base.origin().ascii_serialization()
            )));
        }
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        if !self.robots().await?.allows(&path) {
            return Err(Error::Forbidden(format!(
                "{}'s robots.txt disallows {path} for lariat; nothing was fetched",
                self.name
            )));
        }
        Ok(())
    }

    /// One request with the site's manners. Writes (anything but GET) are sent at most once:
    /// they are repeated only after a 429 or a connection that never opened, when the site
    /// provably did not act.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        form: Option<&[(String, String)]>,
    ) -> std::result::Result<Page, SendError> {
        let read = method == Method::GET;
        self.check(&url).await.map_err(not_sent)?;
        let after_write = |what: String| -> String {
            if read {
                what
            } else {
                format!("{what}; check list_my_entries before trying again")
            }
        };
        let mut backoff = Duration::from_millis(250);
        for attempt in 1..=ATTEMPTS {
            self.limiter.until_ready().await;
            let mut request = self.client.request(method.clone(), url.clone());
            if let Some(form) = form {
                request = request.form(form);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) if attempt < ATTEMPTS && (e.is_connect() || (read && e.is_timeout())) => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    continue;
                }
                Err(e) => {
                    return Err(SendError {
                        error: Error::Upstream(after_write(format!(
                            "{} could not be reached ({}): {e}",
                            self.name,
                            url.path()
                        ))),
                        sent: !e.is_connect(),
                    });
                }
            };
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(5);
                if wait > self.max_retry_wait_secs || attempt == ATTEMPTS {
                    return Err(not_sent(Error::RateLimited {
                        message: format!(
                            "{} is limiting requests; try again in {wait} s",
                            self.name
                        ),
                        retry_after_secs: wait,
                    }));
                }
                tracing::info!(site = %self.name, wait, "429: waiting as asked");
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            if status.is_server_error() {
                if read && attempt < ATTEMPTS {
                    tracing::info!(site = %self.name, %status, attempt, "retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    continue;
                }
                return Err(SendError {
                    error: Error::Upstream(after_write(format!(
                        "{} failed ({status}) on {}{}",
                        self.name,
                        url.path(),
                        if read { " after retries" } else { "" }
                    ))),
                    sent: true,
                });
            }
            let response = self
                .follow(response, read)
                .await
                .map_err(|error| SendError {
                    error: Error::Upstream(after_write(error.to_string())),
                    // the first request reached the site
                    sent: true,
                })?;
            return self.read(response).await.map_err(|error| SendError {
                error: Error::Upstream(after_write(error.to_string())),
                sent: true,
            });
        }
        Err(SendError {
            error: Error::Upstream(after_write(format!("{} kept failing", self.name))),
            sent: !read,
        })
    }

    /// Follows redirects with GETs, each checked like a request of its own: never off the site,
    /// never where robots.txt says no, and never by sending a write's form again (307/308).
    async fn follow(
        &self,
        mut response: reqwest::Response,
        read: bool,
    ) -> Result<reqwest::Response> {
        for _ in 0..MAX_REDIRECTS {
            let status = response.status();
            if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                return Ok(response);
            }
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| response.url().join(l).ok())
                .ok_or_else(|| {
                    Error::Upstream(format!(
                        "{} answered {status} without a usable Location",
                        self.name
                    ))
                })?;
            if !read && matches!(status.as_u16(), 307 | 308) {
                return Err(Error::Upstream(format!(
                    "{} asked for the form to be sent again to {}; lariat never sends a write twice",
                    self.name,
                    location.path()
                )));
            }
            self.check(&location).await?;
            self.limiter.until_ready().await;
            response = self
                .client
                .get(location.clone())
                .send()
                .await
                .map_err(|e| {
                    Error::Upstream(format!(
                        "{} could not be reached ({}): {e}",
                        self.name,
                        location.path()
                    ))
                })?;
        }
        Err(Error::Upstream(format!(
            "{} redirected more than {MAX_REDIRECTS} times",
            self.name
        )))
    }

    async fn read(&self, response: reqwest::Response) -> Result<Page> {
        let status = response.status();
        let url = response.url().clone();
        let too_big = || {
            Error::Upstream(format!(
                "{} sent a page over {MAX_PAGE_BYTES} bytes ({})",
                self.name,
                url.path()
            ))
        };
        if response
            .content_length()
            .is_some_and(|n| n as usize > MAX_PAGE_BYTES)
        {
            return Err(too_big());
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Error::Upstream(format!("reading {}: {e}", url.path())))?;
        if bytes.len() > MAX_PAGE_BYTES {
            return Err(too_big());
        }
        Ok(Page {
            url,
            status,
            html: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }
}
