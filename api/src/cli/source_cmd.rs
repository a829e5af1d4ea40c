//! `lariat source …`: a collection's sources, as the user of LARIAT_API_KEY or the local
//! operator (who alone may name any folder on the server).

use std::path::PathBuf;

use anyhow::Result;
use base::CollectionName;
use operations::sources::{NewSource, SourceKind, SourceUpdate, SourceView, SyncReport};
use operations::store::RunStatus;

use super::EXIT_PARTIAL;
use super::shared::{acting_user, open_service, print_run};

/// What a source follows: one of a folder, pages, or a sitemap.
#[derive(clap::Args, Debug, Default)]
#[group(multiple = false)]
pub struct TargetArgs {
    /// A folder on the server, read recursively
    #[arg(long)]
    folder: Option<PathBuf>,
    /// A web page (HTML, PDF, Markdown, text); repeat for several
    #[arg(long = "url")]
    urls: Vec<String>,
    /// A sitemap: the pages it lists on its own host
    #[arg(long)]
    sitemap: Option<String>,
}

impl TargetArgs {
    /// The kind and targets given, if any (a relative folder is taken from here).
    fn parse(self) -> Result<Option<(SourceKind, Vec<String>)>> {
        Ok(if let Some(folder) = self.folder {
            let abs = std::path::absolute(&folder)?;
            Some((SourceKind::Folder, vec![abs.to_string_lossy().into_owned()]))
        } else if let Some(sitemap) = self.sitemap {
            Some((SourceKind::Sitemap, vec![sitemap]))
        } else if !self.urls.is_empty() {
            Some((SourceKind::Urls, self.urls))
        } else {
            None
        })
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum SourceCommand {
    /// Add a source to a collection; it syncs at once, then on its schedule
    Add {
        collection: String,
        #[command(flatten)]
        target: TargetArgs,
        /// When it syncs: cron, 5 fields (minute hour day month weekday) or 6 (seconds first), UTC
        #[arg(long, default_value = "0 * * * *")]
        schedule: String,
        /// Syncs a page or file may be missing before its documents are deleted
        #[arg(long)]
        max_misses: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// A collection's sources, their schedules and last syncs
    Ls {
        collection: String,
        #[arg(long)]
        json: bool,
    },
    /// Change a source's targets (of its kind), schedule or misses
    Edit {
        collection: String,
        id: String,
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long)]
        schedule: Option<String>,
        #[arg(long)]
        max_misses: Option<u32>,
    },
    /// Remove a source and the documents it brought
    Rm {
        collection: String,
        id: String,
        /// Keep its documents in the collection
        #[arg(long)]
        keep_documents: bool,
    },
    /// Sync a source now and print what it did; exits 1 if the sync failed, 2 if some pages or
    /// files failed
    Sync {
        collection: String,
        id: String,
        #[arg(long)]
        json: bool,
    },
}

fn print_view(v: &SourceView) {
    let last = v.last_sync.as_ref().map_or("never synced".to_owned(), |r| {
        format!(
            "last {} {}",
            base::format_time(r.slot),
            if r.error.is_empty() {
                r.status.to_string()
            } else {
                format!("{}: {}", r.status, r.error)
            }
        )
    });
    println!(
        "{}\t{}\t{}\t{}\tnext {}\t{last}",
        v.source.id,
        v.source.kind.as_str(),
        v.source.schedule,
        v.source.targets.join(" "),
        v.next_sync.map_or("-".to_owned(), base::format_time),
    );
}

pub async fn run(config: &service::Config, cmd: SourceCommand) -> Result<u8> {
    let service = open_service(config).await?;
    let principal = acting_user(&service).await?;
    let sources = &service.sources;
    match cmd {
        SourceCommand::Add {
            collection,
            target,
            schedule,
            max_misses,
            json,
        } => {
            let collection = CollectionName::parse(&collection)?;
            let (kind, targets) = target.parse()?.ok_or_else(|| {
                base::Error::InvalidInput(
                    "name what the source follows: --folder, --url or --sitemap".into(),
                )
            })?;
            let new = NewSource {
                kind,
                targets,
                schedule,
                max_misses,
            };
            let source = sources.add(&principal, &collection, &new).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&source)?);
            } else {
                println!(
                    "source {} added to {collection}: {} {}, synced on {:?}",
                    source.id,
                    source.kind.as_str(),
                    source.targets.join(" "),
                    source.schedule
                );
            }
        }
        SourceCommand::Ls { collection, json } => {
            let collection = CollectionName::parse(&collection)?;
            let list = sources.list(&principal, &collection).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("{collection} has no sources");
            }
            list.iter().filter(|_| !json).for_each(print_view);
        }
        SourceCommand::Edit {
            collection,
            id,
            target,
            schedule,
            max_misses,
        } => {
            let collection = CollectionName::parse(&collection)?;
            let current = sources.get(&principal, &collection, &id).await?.source;
            let targets = match target.parse()? {
                Some((kind, _)) if kind != current.kind => {
                    return Err(base::Error::InvalidInput(format!(
                        "source {id} follows a {}; its kind cannot change (add another source)",
                        current.kind.as_str()
                    ))
                    .into());
                }
                other => other.map(|(_, targets)| targets),
            };
            let update = SourceUpdate {
                targets,
                schedule,
                max_misses,
            };
            let source = sources
                .update(&principal, &collection, &id, &update)
                .await?;
            println!(
                "source {} of {collection}: {} {}, synced on {:?}",
                source.id,
                source.kind.as_str(),
                source.targets.join(" "),
                source.schedule
            );
        }
        SourceCommand::Rm {
            collection,
            id,
            keep_documents,
        } => {
            let collection = CollectionName::parse(&collection)?;
            let deleted = sources
                .remove(&principal, &collection, &id, keep_documents)
                .await?;
            println!("source {id} removed; {deleted} document(s) deleted");
        }
        SourceCommand::Sync {
            collection,
            id,
            json,
        } => {
            let collection = CollectionName::parse(&collection)?;
            let run = service
                .sync_source(&principal, &collection, &id, true)
                .await?;
            service.knowledge.flush().await?;
            let report: Option<SyncReport> = serde_json::from_value(run.outcome.clone()).ok();
            if json {
                println!("{}", serde_json::to_string_pretty(&run)?);
            } else {
                match &report {
                    Some(r) => {
                        println!(
                            "source {id}: {} checked, {} not modified, {} added, {} updated, \
                             {} unchanged, {} missing, {} deleted, {} failed",
                            r.checked,
                            r.not_modified,
                            r.added,
                            r.updated,
                            r.unchanged,
                            r.missing,
                            r.deleted,
                            r.failed
                        );
                        for f in &r.failures {
                            println!("  failed: {}: {}", f.path, f.reason);
                        }
                    }
                    None => print_run(&run),
                }
            }
            return Ok(match report {
                _ if run.status != RunStatus::Succeeded => 1,
                Some(r) if r.failed > 0 => EXIT_PARTIAL,
                _ => 0,
            });
        }
    }
    Ok(0)
}
