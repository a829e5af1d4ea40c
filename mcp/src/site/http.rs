//! [`HttpSite`]: a [`SiteAdapter`] over HTTP. reqwest with a cookie store keeps the member's
//! session; pages are parsed with a real HTML parser (scraper) and read through the configured
//! [`Layout`]. Politeness and robustness: robots.txt, a per-site rate limit, `Retry-After` on
//! 429, retries on 5xx for reads, sign-in again when the session has expired.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use knowledge::config::SiteSettings;
use knowledge::{Error, Result};
use reqwest::{Method, StatusCode, Url};
use scraper::{ElementRef, Html, Selector};
use tokio::sync::Mutex;

use super::layout::{Field, FormPage, Layout, ListPage, Rows};
use super::robots::Robots;
use super::{
    DisciplineFee, Entry, EntryRequest, EventDetail, EventQuery, EventSummary, SentRequest,
    SiteAdapter, Standing, WriteOutcome, layout_not_understood,
};

/// Largest page read.
const MAX_PAGE_BYTES: usize = 2 * 1024 * 1024;
/// Attempts for a read that meets 5xx or 429.
const ATTEMPTS: u32 = 4;
/// How long a robots.txt is trusted.
const ROBOTS_TTL: Duration = Duration::from_secs(3600);

pub struct HttpSite {
    layout: Layout,
    base: Url,
    settings: SiteSettings,
    client: reqwest::Client,
    limiter: DefaultDirectRateLimiter,
    robots: Mutex<Option<(Instant, Arc<Robots>)>>,
    /// One sign-in at a time: concurrent calls that find the session expired wait for it.
    signin: Mutex<u64>,
}

/// A fetched page.
struct Page {
    url: Url,
    status: StatusCode,
    html: String,
}

fn selector(s: &str) -> Result<Selector> {
    // checked when the layout was loaded
    Selector::parse(s).map_err(|e| layout_not_understood(format!("selector {s:?}: {e}")))
}

/// The element's text with whitespace collapsed.
fn text_of(el: ElementRef<'_>) -> String {
    el.text()
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Scraped text is untrusted and capped.
fn cap(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max).collect();
    t.push('…');
    t
}

impl HttpSite {
    pub fn new(layout: Layout, settings: SiteSettings) -> std::result::Result<Self, String> {
        let base = settings
            .base_url
            .clone()
            .or_else(|| layout.base_url.clone())
            .ok_or("no base URL: set sites.<domain>.base_url or base_url in the layout")?;
        let base = Url::parse(&base).map_err(|e| format!("base URL {base:?}: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(format!("base URL {base} must be http or https"));
        }
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .user_agent(layout.user_agent.clone())
            .timeout(Duration::from_secs(settings.timeout_secs))
            .connect_timeout(Duration::from_secs(settings.timeout_secs.min(10)))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let per_minute = NonZeroU32::new(settings.requests_per_minute).unwrap_or(NonZeroU32::MIN);
        Ok(Self {
            layout,
            base,
            limiter: RateLimiter::direct(Quota::per_minute(per_minute)),
            settings,
            client,
            robots: Mutex::new(None),
            signin: Mutex::new(0),
        })
    }

    fn url(&self, path: &str, id: Option<&str>) -> Result<Url> {
        let path = match id {
            Some(id) => path.replace("{id}", id),
            None => path.to_owned(),
        };
        self.base
            .join(&path)
            .map_err(|e| Error::InvalidInput(format!("bad site path {path:?}: {e}")))
    }

    async fn robots(&self) -> Result<Arc<Robots>> {
        let mut cached = self.robots.lock().await;
        if let Some((at, r)) = cached.as_ref()
            && at.elapsed() < ROBOTS_TTL
        {
            return Ok(r.clone());
        }
        let product = self
            .layout
            .user_agent
            .split('/')
            .next()
            .unwrap_or("")
            .to_owned();
        let url = self.url("/robots.txt", None)?;
        self.limiter.until_ready().await;
        let robots = match self.client.get(url).send().await {
            Ok(r) if r.status().is_success() => {
                Robots::parse(&r.text().await.unwrap_or_default(), &product)
            }
            Ok(r) if r.status().is_client_error() => Robots::allow_all(),
            // unreachable or failing: everything counts as disallowed (RFC 9309); ask again
            // next time
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
            self.layout.name
        ))
    }

    /// One request with the site's manners: robots.txt for reads, the rate limit, `Retry-After`
    /// on 429 (up to `max_retry_wait_secs`), retries with backoff on 5xx for reads. Writes are
    /// not retried after the site may have acted (5xx, timeouts).
    async fn send(
        &self,
        method: Method,
        url: Url,
        form: Option<&[(String, String)]>,
    ) -> Result<Page> {
        let read = method == Method::GET;
        if read {
            let path = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_owned(),
            };
            if !self.robots().await?.allows(&path) {
                return Err(Error::Forbidden(format!(
                    "{}'s robots.txt disallows {path} for lariat; nothing was fetched",
                    self.layout.name
                )));
            }
        }
        let mut backoff = Duration::from_millis(250);
        for attempt in 1..=ATTEMPTS {
            self.limiter.until_ready().await;
            let mut request = self.client.request(method.clone(), url.clone());
            if let Some(form) = form {
                request = request.form(form);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) if read && attempt < ATTEMPTS && (e.is_connect() || e.is_timeout()) => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    continue;
                }
                Err(e) => {
                    return Err(Error::Upstream(format!(
                        "{} could not be reached ({}): {e}{}",
                        self.layout.name,
                        url.path(),
                        if read {
                            ""
                        } else {
                            "; check list_my_entries before trying again"
                        }
                    )));
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
                if wait > self.settings.max_retry_wait_secs || attempt == ATTEMPTS {
                    return Err(Error::RateLimited {
                        message: format!(
                            "{} is limiting requests; try again in {wait} s",
                            self.layout.name
                        ),
                        retry_after_secs: wait,
                    });
                }
                tracing::info!(site = %self.layout.name, wait, "429: waiting as asked");
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            if status.is_server_error() {
                if read && attempt < ATTEMPTS {
                    tracing::info!(site = %self.layout.name, %status, attempt, "retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    continue;
                }
                return Err(Error::Upstream(format!(
                    "{} failed ({status}) on {}{}",
                    self.layout.name,
                    url.path(),
                    if read {
                        " after retries"
                    } else {
                        "; check list_my_entries before trying again"
                    }
                )));
            }
            let final_url = response.url().clone();
            if response
                .content_length()
                .is_some_and(|n| n as usize > MAX_PAGE_BYTES)
            {
                return Err(Error::Upstream(format!(
                    "{} sent a page over {MAX_PAGE_BYTES} bytes ({})",
                    self.layout.name,
                    url.path()
                )));
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|e| Error::Upstream(format!("reading {}: {e}", url.path())))?;
            if bytes.len() > MAX_PAGE_BYTES {
                return Err(Error::Upstream(format!(
                    "{} sent a page over {MAX_PAGE_BYTES} bytes ({})",
                    self.layout.name,
                    url.path()
                )));
            }
            return Ok(Page {
                url: final_url,
                status,
                html: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        Err(Error::Upstream(format!(
            "{} kept failing",
            self.layout.name
        )))
    }

    /// Whether a page is the sign-in form (a member page answered "sign in first").
    fn is_signin_page(&self, page: &Page) -> Result<bool> {
        let form = selector(&self.layout.signin.form)?;
        Ok(page.url.path() == self.layout.signin.path
            || Html::parse_document(&page.html)
                .select(&form)
                .next()
                .is_some())
    }

    /// Signs in with the configured account (the sign-in form's hidden fields, CSRF token
    /// included, are sent back as the page has them). `seen` is the sign-in generation the caller
    /// saw fail: if another call signed in since, this one does not sign in again.
    async fn sign_in(&self, seen: u64) -> Result<()> {
        let mut generation = self.signin.lock().await;
        if *generation != seen {
            return Ok(());
        }
        let s = &self.settings;
        let (Some(user), Some(password)) = (&s.username, &s.password) else {
            return Err(Error::Unavailable(format!(
                "{} needs a member sign-in: set the account lariat uses in sites.<domain>.username \
                 and sites.<domain>.password (LARIAT_SITES__<DOMAIN>__USERNAME / __PASSWORD)",
                self.layout.name
            )));
        };
        let signin = &self.layout.signin;
        let page = self
            .send(Method::GET, self.url(&signin.path, None)?, None)
            .await?;
        let form = HtmlForm::find(&page, &signin.form)?;
        let mut fields = form.fields.clone();
        form.set(&mut fields, &signin.username_field, user)?;
        form.set(&mut fields, &signin.password_field, password.expose())?;
        let result = self
            .send(form.method.clone(), form.action.clone(), Some(&fields))
            .await?;
        if !result.status.is_success() {
            return Err(Error::Upstream(format!(
                "{} refused the sign-in ({})",
                self.layout.name, result.status
            )));
        }
        let doc = Html::parse_document(&result.html);
        if let Some(err) = doc.select(&selector(&signin.error)?).next() {
            return Err(Error::Unavailable(format!(
                "{} refused the configured account: {}",
                self.layout.name,
                cap(&text_of(err), 200)
            )));
        }
        if doc.select(&selector(&signin.form)?).next().is_some() {
            return Err(Error::Unavailable(format!(
                "{} still shows its sign-in form after signing in; check the account settings",
                self.layout.name
            )));
        }
        *generation += 1;
        tracing::info!(site = %self.layout.name, "signed in");
        Ok(())
    }

    /// A member page: signs in first when the site answers with its sign-in form (never signed
    /// in, or the session expired), then asks once more.
    async fn member_page(
        &self,
        method: Method,
        url: Url,
        form: Option<&[(String, String)]>,
    ) -> Result<Page> {
        for _ in 0..2 {
            let seen = *self.signin.lock().await;
            let page = self.send(method.clone(), url.clone(), form).await?;
            if !self.is_signin_page(&page)? {
                return Ok(page);
            }
            self.sign_in(seen).await?;
        }
        Err(Error::Unavailable(format!(
            "{} keeps asking to sign in; check the account settings",
            self.layout.name
        )))
    }

    async fn page(&self, url: Url, signed_in: bool) -> Result<Page> {
        let page = if signed_in {
            self.member_page(Method::GET, url, None).await?
        } else {
            self.send(Method::GET, url, None).await?
        };
        if page.status == StatusCode::NOT_FOUND {
            return Err(Error::NotFound(format!(
                "{} has no such page ({})",
                self.layout.name,
                page.url.path()
            )));
        }
        if !page.status.is_success() {
            return Err(Error::Upstream(format!(
                "{} answered {} for {}",
                self.layout.name,
                page.status,
                page.url.path()
            )));
        }
        Ok(page)
    }

    /// Scraped rows of a page.
    fn rows(&self, doc: &Html, rows: &Rows, what: &str) -> Result<Vec<BTreeMap<String, String>>> {
        let row = selector(&rows.row)?;
        let mut out = Vec::new();
        for (i, el) in doc.select(&row).enumerate() {
            out.push(self.fields(el, &rows.fields, &format!("{what} row {}", i + 1))?);
        }
        Ok(out)
    }

    fn fields(
        &self,
        el: ElementRef<'_>,
        fields: &BTreeMap<String, Field>,
        what: &str,
    ) -> Result<BTreeMap<String, String>> {
        let mut map = BTreeMap::new();
        for (name, field) in fields {
            let found = el.select(&selector(field.selector())?).next();
            let raw = found.and_then(|f| match field.attr() {
                Some(a) => f.value().attr(a).map(str::to_owned),
                None => Some(text_of(f)),
            });
            let value = raw
                .as_deref()
                .and_then(|r| field.extract(r))
                .map(|v| cap(v.trim(), self.layout.max_text_chars))
                .filter(|v| !v.is_empty());
            match value {
                Some(v) => {
                    map.insert(name.clone(), v);
                }
                None if field.optional() => {}
                None => {
                    return Err(layout_not_understood(format!(
                        "{what} has no `{name}` ({:?})",
                        field.selector()
                    )));
                }
            }
        }
        Ok(map)
    }

    /// A list page, following its next links up to `limit` items or `max_pages` pages.
    async fn list(
        &self,
        page: &ListPage,
        args: &[(&str, Option<&str>)],
        limit: usize,
        what: &str,
    ) -> Result<Vec<BTreeMap<String, String>>> {
        let mut url = self.url(&page.path, None)?;
        {
            let mut q = url.query_pairs_mut();
            for (arg, value) in args {
                if let Some(v) = value {
                    let param = page.params.get(*arg).ok_or_else(|| {
                        Error::InvalidInput(format!(
                            "{} cannot filter {what} by {arg} (its layout has no such parameter)",
                            self.layout.name
                        ))
                    })?;
                    q.append_pair(param, v);
                }
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        let container = selector(&page.container)?;
        let mut items = Vec::new();
        for _ in 0..page.max_pages.max(1) {
            let fetched = self.page(url.clone(), page.requires_signin).await?;
            let next = {
                let doc = Html::parse_document(&fetched.html);
                if doc.select(&container).next().is_none() {
                    return Err(layout_not_understood(format!(
                        "{what} page {} has no {:?}",
                        fetched.url.path(),
                        page.container
                    )));
                }
                items.extend(self.rows(&doc, &page.rows, what)?);
                match &page.next {
                    Some(n) => doc
                        .select(&selector(n)?)
                        .next()
                        .and_then(|a| a.value().attr("href"))
                        .and_then(|h| fetched.url.join(h).ok()),
                    None => None,
                }
            };
            if items.len() >= limit {
                break;
            }
            match next {
                // never leave the site by following a link
                Some(n) if n.origin() == self.base.origin() => url = n,
                _ => break,
            }
        }
        items.truncate(limit);
        Ok(items)
    }

    /// Fills and sends a form (entry, withdrawal): hidden fields as the page has them, the
    /// arguments in their mapped fields, choices checked against the form's own options.
    async fn write(
        &self,
        form_page: &FormPage,
        id: &str,
        args: &[(&str, Option<&str>)],
        dry_run: bool,
    ) -> Result<WriteOutcome> {
        let page = self
            .page(self.url(&form_page.path, Some(id))?, true)
            .await?;
        let form = HtmlForm::find(&page, &form_page.form)?;
        let mut fields = form.fields.clone();
        for (arg, value) in args {
            let Some(value) = value else { continue };
            let name = form_page.fields.get(*arg).ok_or_else(|| {
                layout_not_understood(format!("the form has no field configured for `{arg}`"))
            })?;
            let value = form.choose(name, value)?;
            form.set(&mut fields, name, &value)?;
        }
        if dry_run {
            return Ok(WriteOutcome::DryRun {
                request: SentRequest {
                    method: form.method.to_string(),
                    url: form.action.to_string(),
                    fields,
                },
            });
        }
        let result = self
            .member_page(form.method.clone(), form.action.clone(), Some(&fields))
            .await?;
        let doc = Html::parse_document(&result.html);
        let errors: Vec<String> = doc
            .select(&selector(&form_page.errors)?)
            .map(|e| cap(&text_of(e), self.layout.max_text_chars))
            .filter(|e| !e.is_empty())
            .collect();
        if !errors.is_empty() {
            return Ok(WriteOutcome::Refused { errors });
        }
        let success = &form_page.success;
        if let Some(found) = doc.select(&selector(success.selector())?).next() {
            let raw = match success.attr() {
                Some(a) => found.value().attr(a).unwrap_or_default().to_owned(),
                None => text_of(found),
            };
            if let Some(v) = success.extract(&raw).filter(|v| !v.trim().is_empty()) {
                return Ok(WriteOutcome::Done {
                    confirmation: cap(v.trim(), self.layout.max_text_chars),
                });
            }
        }
        if !result.status.is_success() {
            return Err(Error::Upstream(format!(
                "{} answered {} to the form, without a message lariat understands",
                self.layout.name, result.status
            )));
        }
        Err(layout_not_understood(format!(
            "the answer to the form ({}) shows neither a confirmation ({:?}) nor errors ({:?}); \
             check list_my_entries to see whether it went through",
            result.url.path(),
            success.selector(),
            form_page.errors
        )))
    }
}

/// A form as a browser would submit it.
struct HtmlForm {
    action: Url,
    method: Method,
    fields: Vec<(String, String)>,
    /// select name → (value, label) of each option
    choices: BTreeMap<String, Vec<(String, String)>>,
}

impl HtmlForm {
    fn find(page: &Page, form_selector: &str) -> Result<Self> {
        let doc = Html::parse_document(&page.html);
        let form = doc
            .select(&selector(form_selector)?)
            .next()
            .ok_or_else(|| {
                layout_not_understood(format!("{} has no form {form_selector:?}", page.url.path()))
            })?;
        let action = match form.value().attr("action") {
            Some(a) if !a.trim().is_empty() => page
                .url
                .join(a.trim())
                .map_err(|e| layout_not_understood(format!("form action {a:?}: {e}")))?,
            _ => page.url.clone(),
        };
        let method = match form.value().attr("method").map(str::to_ascii_lowercase) {
            Some(m) if m == "post" => Method::POST,
            _ => Method::GET,
        };
        let mut fields = Vec::new();
        let mut choices = BTreeMap::new();
        let controls = Selector::parse("input[name], select[name], textarea[name]")
            .map_err(|e| Error::Internal(e.to_string()))?;
        let options = Selector::parse("option").map_err(|e| Error::Internal(e.to_string()))?;
        for c in form.select(&controls) {
            let el = c.value();
            let name = el.attr("name").unwrap_or_default().to_owned();
            match el.name() {
                "input" => {
                    let kind = el.attr("type").unwrap_or("text").to_ascii_lowercase();
                    if matches!(
                        kind.as_str(),
                        "submit" | "button" | "image" | "reset" | "file"
                    ) {
                        continue;
                    }
                    if matches!(kind.as_str(), "checkbox" | "radio") && el.attr("checked").is_none()
                    {
                        continue;
                    }
                    fields.push((name, el.attr("value").unwrap_or_default().to_owned()));
                }
                "select" => {
                    let opts: Vec<(String, String, bool)> = c
                        .select(&options)
                        .map(|o| {
                            let label = text_of(o);
                            let value =
                                o.value().attr("value").map_or(label.clone(), str::to_owned);
                            (value, label, o.value().attr("selected").is_some())
                        })
                        .collect();
                    let chosen = opts
                        .iter()
                        .find(|o| o.2)
                        .or(opts.first())
                        .map(|o| o.0.clone())
                        .unwrap_or_default();
                    fields.push((name.clone(), chosen));
                    choices.insert(
                        name,
                        opts.into_iter()
                            .filter(|o| !o.0.is_empty())
                            .map(|(v, l, _)| (v, l))
                            .collect(),
                    );
                }
                _ => fields.push((name, text_of(c))),
            }
        }
        Ok(Self {
            action,
            method,
            fields,
            choices,
        })
    }

    /// The value to send for `value` in field `name`: for a select, the option whose value or
    /// label it names (case-insensitively).
    fn choose(&self, name: &str, value: &str) -> Result<String> {
        let Some(options) = self.choices.get(name) else {
            return Ok(value.to_owned());
        };
        let wanted = value.trim().to_lowercase();
        options
            .iter()
            .find(|(v, l)| v.to_lowercase() == wanted || l.to_lowercase() == wanted)
            .map(|(v, _)| v.clone())
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "{value:?} is not one of the choices the form offers for {name}: {}",
                    options
                        .iter()
                        .map(|(_, l)| l.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    fn set(&self, fields: &mut [(String, String)], name: &str, value: &str) -> Result<()> {
        let slot = fields.iter_mut().find(|(n, _)| n == name).ok_or_else(|| {
            layout_not_understood(format!(
                "the form at {} has no field {name:?}",
                self.action.path()
            ))
        })?;
        slot.1 = value.to_owned();
        Ok(())
    }
}

fn typed<T: serde::de::DeserializeOwned>(map: BTreeMap<String, String>, what: &str) -> Result<T> {
    serde_json::to_value(map)
        .and_then(serde_json::from_value)
        .map_err(|e| layout_not_understood(format!("{what}: {e}")))
}

#[async_trait]
impl SiteAdapter for HttpSite {
    fn name(&self) -> &str {
        &self.layout.name
    }

    async fn search_events(&self, q: &EventQuery) -> Result<Vec<EventSummary>> {
        let args = [
            ("from", q.from.as_deref()),
            ("to", q.to.as_deref()),
            ("state", q.state.as_deref()),
            ("discipline", q.discipline.as_deref()),
        ];
        let rows = self
            .list(&self.layout.events, &args, q.limit, "event list")
            .await?;
        rows.into_iter()
            .map(|row| {
                let mut e: EventSummary = typed(row, "event list")?;
                e.url = self.url(&self.layout.event.path, Some(&e.id))?.to_string();
                Ok(e)
            })
            .collect()
    }

    async fn event(&self, id: &str) -> Result<EventDetail> {
        let url = self.url(&self.layout.event.path, Some(id))?;
        let page = self.page(url.clone(), false).await?;
        let doc = Html::parse_document(&page.html);
        let layout = &self.layout.event;
        let root = doc
            .select(&selector(&layout.container)?)
            .next()
            .ok_or_else(|| {
                layout_not_understood(format!(
                    "event page {} has no {:?}",
                    url.path(),
                    layout.container
                ))
            })?;
        let fields = self.fields(root, &layout.fields, "event page")?;
        let mut event: EventDetail = typed(fields, "event page")?;
        if let Some(list) = &layout.list {
            for row in self.rows(&doc, list, "event fee list")? {
                let mut row = row;
                event.disciplines.push(DisciplineFee {
                    discipline: row.remove("discipline").ok_or_else(|| {
                        layout_not_understood("event.list has no `discipline` field")
                    })?,
                    fee: row.remove("fee"),
                });
            }
        }
        event.id = id.to_owned();
        event.url = url.to_string();
        Ok(event)
    }

    async fn standings(
        &self,
        discipline: &str,
        season: Option<&str>,
        top: usize,
    ) -> Result<Vec<Standing>> {
        let args = [("discipline", Some(discipline)), ("season", season)];
        let rows = self
            .list(&self.layout.standings, &args, top, "standings")
            .await?;
        rows.into_iter().map(|r| typed(r, "standings")).collect()
    }

    async fn my_entries(&self) -> Result<Vec<Entry>> {
        let rows = self
            .list(&self.layout.entries, &[], usize::MAX, "entry list")
            .await?;
        rows.into_iter().map(|r| typed(r, "entry list")).collect()
    }

    async fn submit_entry(&self, entry: &EntryRequest, dry_run: bool) -> Result<WriteOutcome> {
        let args = [
            ("discipline", Some(entry.discipline.as_str())),
            ("partner", entry.partner.as_deref()),
        ];
        self.write(&self.layout.entry_form, &entry.event_id, &args, dry_run)
            .await
    }

    async fn withdraw_entry(&self, entry_id: &str, dry_run: bool) -> Result<WriteOutcome> {
        self.write(&self.layout.withdraw_form, entry_id, &[], dry_run)
            .await
    }
}
