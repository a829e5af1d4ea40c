//! [`HttpSite`]: a [`SiteAdapter`] over HTTP. `session` keeps the member signed in (sign-in on
//! demand, the CSRF token sent back, forms posted once); `scrape` reads pages through the
//! configured [`Layout`]; this file puts them together into the adapter's reads and two-step
//! writes. The requests themselves go through [`Transport`] (origin, robots.txt, rate limit,
//! retries, redirects) and forms are filled by [`HtmlForm`].

use std::collections::BTreeMap;

use crate::config::SiteSettings;
use async_trait::async_trait;
use base::{Error, Result};
use reqwest::{Method, StatusCode, Url};
use scraper::{ElementRef, Html, Selector};
use tokio::sync::Mutex;

mod forms;
mod scrape;
mod session;
mod transport;

use parse::site::scrape::{cap, text_of};

use super::{
    DisciplineFee, Entry, EntryRequest, EventDetail, EventQuery, EventSummary, SentRequest,
    SiteAdapter, Standing, WriteError, WriteOutcome, layout_not_understood,
};
use forms::HtmlForm;
use parse::site::layout::{Field, FormPage, Layout, ListPage, Rows};
use transport::{Page, Transport};

pub struct HttpSite {
    layout: Layout,
    settings: SiteSettings,
    transport: Transport,
    /// One sign-in at a time: concurrent calls that find the session expired wait for it.
    signin: Mutex<u64>,
}

fn selector(s: &str) -> Result<Selector> {
    parse::site::scrape::selector(s).map_err(layout_not_understood)
}

impl HttpSite {
    pub fn new(layout: Layout, settings: SiteSettings) -> std::result::Result<Self, String> {
        let base = settings
            .base_url
            .clone()
            .or_else(|| layout.base_url.clone())
            .ok_or("no base URL: set sites.<domain>.base_url or base_url in the layout")?;
        let base = Url::parse(&base).map_err(|e| format!("base URL {base:?}: {e}"))?;
        let transport = Transport::new(&layout.name, &layout.user_agent, base, &settings)?;
        Ok(Self {
            layout,
            settings,
            transport,
            signin: Mutex::new(0),
        })
    }

    fn url(&self, path: &str, id: Option<&str>) -> Result<Url> {
        self.transport.url(path, id)
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        form: Option<&[(String, String)]>,
    ) -> Result<Page> {
        Ok(self.transport.send(method, url, form).await?)
    }

    /// Fills and sends a form (entry, withdrawal): hidden fields as the page has them, the
    /// arguments in their mapped fields, choices checked against the form's own options.
    async fn write(
        &self,
        form_page: &FormPage,
        id: &str,
        args: &[(&str, Option<&str>)],
        dry_run: bool,
    ) -> std::result::Result<WriteOutcome, WriteError> {
        // Until the form is posted nothing has been sent that could act on the site.
        let (form, fields) = self
            .fill(form_page, id, args)
            .await
            .map_err(WriteError::NotSent)?;
        if dry_run {
            return Ok(WriteOutcome::DryRun {
                request: SentRequest {
                    method: form.method.to_string(),
                    url: form.action.to_string(),
                    fields,
                },
            });
        }
        let result = self.post_form(&form, &fields).await?;
        self.read_answer(form_page, &result)
            .map_err(WriteError::Uncertain)
    }

    /// The write's form page, with the arguments filled into its fields.
    async fn fill(
        &self,
        form_page: &FormPage,
        id: &str,
        args: &[(&str, Option<&str>)],
    ) -> Result<(HtmlForm, Vec<(String, String)>)> {
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
        Ok((form, fields))
    }

    /// What the answer to a posted form says: the site's refusal, its confirmation, or an
    /// error when it says neither in a way the layout describes.
    fn read_answer(&self, form_page: &FormPage, result: &Page) -> Result<WriteOutcome> {
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
                "{} answered {} to the form, without a message lariat understands; check \
                 list_my_entries to see whether it went through",
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

    async fn submit_entry(
        &self,
        entry: &EntryRequest,
        dry_run: bool,
    ) -> std::result::Result<WriteOutcome, WriteError> {
        let args = [
            ("discipline", Some(entry.discipline.as_str())),
            ("partner", entry.partner.as_deref()),
        ];
        self.write(&self.layout.entry_form, &entry.event_id, &args, dry_run)
            .await
    }

    async fn withdraw_entry(
        &self,
        entry_id: &str,
        dry_run: bool,
    ) -> std::result::Result<WriteOutcome, WriteError> {
        self.write(&self.layout.withdraw_form, entry_id, &[], dry_run)
            .await
    }
}
