//! What a sync finds: a folder's changed files (beneath the folder, no link followed) and a
//! site's changed pages (by sitemap, with conditional requests).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use futures::StreamExt;

use super::{Failure, Fetched, Fetcher, Input, Validators, collect_files};
use crate::store::SourceItem;
use base::error::{Error, Result};
use base::principal::Role;
use base::types::now_ms;
use identity::accounts::is_reserved;
use parse::site::sitemap::Sitemap;

use super::sync::*;

/// A page's or file's state after this sync, and the input to ingest when it changed.
pub(super) struct Checked {
    pub(super) item: SourceItem,
    pub(super) input: Option<Input>,
}

impl Sources {
    /// Whether the local operator added the source (so its folder may lie outside the roots).
    pub(super) async fn made_by_operator(&self, source: &Source) -> Result<bool> {
        Ok(self
            .accounts
            .user(&source.created_by)
            .await?
            .is_some_and(|u| u.role == Role::Admin && is_reserved(&u.email)))
    }

    /// Lists a folder's files (regular files only, no link followed); those whose size and
    /// modification time changed are to be read, beneath the folder.
    pub(super) async fn check_folder(
        &self,
        source: &Source,
        prior: &HashMap<String, SourceItem>,
        report: &mut SyncReport,
    ) -> Result<Vec<Checked>> {
        let folder = source.targets[0].clone();
        let root = PathBuf::from(&folder);
        let walked = root.clone();
        let roots = self.config.folder_roots.clone();
        let operator = self.made_by_operator(source).await?;
        let listing = tokio::task::spawn_blocking(move || {
            // checked again at every sync: still this very folder (its canonical path unchanged,
            // so no link put in its place or on its path) and still where sources may read
            let same = resolve_folder(&walked, &roots, operator).is_ok_and(|f| f == folder);
            if !same {
                return Err(Error::Unavailable(format!(
                    "the folder {} cannot be read, was replaced, or is no longer under \
                     sources.folder_roots; its documents are kept",
                    walked.display()
                )));
            }
            let mut failures = Vec::new();
            let files: Vec<(PathBuf, String, String)> = collect_files(&[walked], &mut failures)
                .into_iter()
                .filter_map(|(path, shown)| {
                    let meta = std::fs::symlink_metadata(&path)
                        .ok()
                        .filter(|m| m.is_file())?;
                    let modified = meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_nanos());
                    Some((path, shown, format!("{}-{modified}", meta.len())))
                })
                .collect();
            Ok((files, failures))
        })
        .await??;
        let (files, failures) = listing;
        report.failures.extend(failures);
        report.checked += files.len();
        let now = now_ms();
        Ok(files
            .into_iter()
            .map(|(path, shown, stamp)| {
                let key = path.to_string_lossy().into_owned();
                match prior.get(&key) {
                    Some(old) if old.etag.as_deref() == Some(stamp.as_str()) => {
                        report.not_modified += 1;
                        Checked {
                            item: SourceItem {
                                misses: 0,
                                seen_at: now,
                                ..old.clone()
                            },
                            input: None,
                        }
                    }
                    _ => Checked {
                        item: SourceItem {
                            item: key.clone(),
                            document_source: key,
                            etag: Some(stamp),
                            last_modified: None,
                            misses: 0,
                            seen_at: now,
                        },
                        input: Some(Input::File {
                            path,
                            shown,
                            root: Some(root.clone()),
                        }),
                    },
                }
            })
            .collect())
    }

    /// Fetches pages, each conditionally on what its last fetch returned. Pages that are gone
    /// are left out (a miss); pages that failed are reported and left out too, but keep their
    /// documents (the caller skips them by their failure).
    pub(super) async fn check_pages(
        &self,
        urls: &[String],
        prior: &HashMap<String, SourceItem>,
        report: &mut SyncReport,
    ) -> Vec<Checked> {
        report.checked += urls.len();
        let fetches = futures::stream::iter(urls.iter().cloned())
            .map(|url| async move {
                let old = prior.get(&url);
                let validators = old.map(|o| Validators {
                    etag: o.etag.clone(),
                    last_modified: o.last_modified.clone(),
                });
                let fetched = match Fetcher::parse_url(&url) {
                    Ok(parsed) => self.fetcher.fetch(&parsed, validators.as_ref()).await,
                    Err(e) => Err(e),
                };
                (url, fetched)
            })
            .buffered(FETCH_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let now = now_ms();
        let mut out = Vec::new();
        for (url, fetched) in fetches {
            let old = prior.get(&url);
            let fail = |reason: String| Failure {
                path: url.clone(),
                reason,
            };
            match fetched {
                Ok(Fetched::Page(page)) => {
                    let validators = page.validators.clone();
                    match page.into_input(&url) {
                        Ok(input) => out.push(Checked {
                            item: SourceItem {
                                item: url.clone(),
                                document_source: url.clone(),
                                etag: validators.etag,
                                last_modified: validators.last_modified,
                                misses: 0,
                                seen_at: now,
                            },
                            input: Some(input),
                        }),
                        Err(reason) => report.failures.push(fail(reason)),
                    }
                }
                Ok(Fetched::NotModified) => match old {
                    Some(old) => {
                        report.not_modified += 1;
                        out.push(Checked {
                            item: SourceItem {
                                misses: 0,
                                seen_at: now,
                                ..old.clone()
                            },
                            input: None,
                        });
                    }
                    None => report.failures.push(fail(
                        "the server answered 304 to a plain request".to_owned(),
                    )),
                },
                // a miss if it was known; never found at all, a failure to report
                Ok(Fetched::Gone) if old.is_some() => {}
                Ok(Fetched::Gone) => report
                    .failures
                    .push(fail("not found (404 or 410)".to_owned())),
                Err(e) => report.failures.push(fail(e.to_string())),
            }
        }
        out
    }

    /// The pages a sitemap (or the sitemaps of a sitemap index) lists on the sitemap's own host,
    /// up to `sources.max_pages`.
    pub(super) async fn sitemap_pages(
        &self,
        address: &str,
        report: &mut SyncReport,
    ) -> Result<Vec<String>> {
        let url = Fetcher::parse_url(address)?;
        let read = |fetched: Fetched, at: &str| -> Result<Sitemap> {
            match fetched {
                Fetched::Page(page) => Sitemap::parse(&String::from_utf8_lossy(&page.bytes))
                    .ok_or_else(|| {
                        Error::Upstream(format!(
                            "{at} is not a sitemap (a <urlset> or <sitemapindex>)"
                        ))
                    }),
                Fetched::Gone => Err(Error::Upstream(format!(
                    "the sitemap {at} is gone (404 or 410); its pages' documents are kept"
                ))),
                Fetched::NotModified => Err(Error::Upstream(format!(
                    "{at} answered 304 to a plain request"
                ))),
            }
        };
        let top = read(self.fetcher.fetch(&url, None).await?, address)?;
        let mut locs = Vec::new();
        if top.index {
            for entry in top.entries.iter().take(MAX_SITEMAPS) {
                let child = match Fetcher::parse_url(&entry.loc) {
                    Ok(child) if child.host_str() == url.host_str() => child,
                    _ => {
                        report.failures.push(Failure {
                            path: entry.loc.clone(),
                            reason: "not a sitemap on the index's host".into(),
                        });
                        continue;
                    }
                };
                match self.fetcher.fetch(&child, None).await {
                    Ok(fetched) => match read(fetched, &entry.loc) {
                        Ok(map) if !map.index => locs.extend(map.entries),
                        Ok(_) => report.failures.push(Failure {
                            path: entry.loc.clone(),
                            reason: "a sitemap index inside a sitemap index is not followed".into(),
                        }),
                        Err(e) => report.failures.push(Failure {
                            path: entry.loc.clone(),
                            reason: e.to_string(),
                        }),
                    },
                    Err(e) => report.failures.push(Failure {
                        path: entry.loc.clone(),
                        reason: e.to_string(),
                    }),
                }
            }
        } else {
            locs = top.entries;
        }
        let mut pages = Vec::new();
        let mut seen = HashSet::new();
        for entry in locs {
            match Fetcher::parse_url(&entry.loc) {
                Ok(page) if page.host_str() == url.host_str() && page.scheme() == url.scheme() => {
                    let page = page.to_string();
                    if seen.insert(page.clone()) {
                        pages.push(page);
                    }
                }
                _ => report.failures.push(Failure {
                    path: entry.loc,
                    reason: "not a page on the sitemap's own host".into(),
                }),
            }
        }
        if pages.len() > self.config.max_pages {
            report.failures.push(Failure {
                path: address.to_owned(),
                reason: format!(
                    "lists {} pages; the first {} are followed (sources.max_pages)",
                    pages.len(),
                    self.config.max_pages
                ),
            });
            pages.truncate(self.config.max_pages);
        }
        Ok(pages)
    }
}
