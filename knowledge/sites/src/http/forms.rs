//! HTML forms filled as a browser would fill them: hidden fields (CSRF tokens) as the page has
//! them, checked boxes only, a select's chosen option, and values for selects checked against
//! the options the form offers.

use std::collections::BTreeMap;

use base::{Error, Result};
use reqwest::{Method, Url};
use scraper::{Html, Selector};

use super::transport::Page;
use super::{layout_not_understood, selector, text_of};

/// A form as a browser would submit it.
pub(super) struct HtmlForm {
    pub action: Url,
    pub method: Method,
    pub fields: Vec<(String, String)>,
    /// select name → (value, label) of each option
    choices: BTreeMap<String, Vec<(String, String)>>,
}

impl HtmlForm {
    pub fn find(page: &Page, form_selector: &str) -> Result<Self> {
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
    pub fn choose(&self, name: &str, value: &str) -> Result<String> {
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

    pub fn set(&self, fields: &mut [(String, String)], name: &str, value: &str) -> Result<()> {
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
