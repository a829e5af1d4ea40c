//! The operator's commands: accounts, collections and jobs.

use std::io::IsTerminal;

use anyhow::{Context, Result};
use base::{CollectionName, MemberRole, Visibility};
use operations::store::RunStatus;
use service::Config;

use super::shared::*;
use super::*;

/// `lariat jobs …`.
pub(super) async fn jobs(config: &Config, cmd: JobsCommand) -> Result<u8> {
    let service = open_service(config).await?;
    let jobs = service.jobs.clone();
    let time = |ms: Option<i64>| ms.map_or("-".to_owned(), base::format_time);
    let print_runs = |runs: &[operations::store::JobRun]| runs.iter().for_each(print_run);
    match cmd {
        JobsCommand::Ls { json } => {
            let list = jobs.list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            }
            for j in list.iter().filter(|_| !json) {
                let last = j.last_run.as_ref().map_or("never run".to_owned(), |r| {
                    format!("last {} {} ({})", time(Some(r.slot)), r.status, r.trigger)
                });
                println!(
                    "{}\t{}\tnext {}\t{last}",
                    j.name,
                    j.schedule,
                    time(j.next_run)
                );
            }
        }
        JobsCommand::History { name, limit, json } => {
            let runs = jobs.history(name.as_deref(), limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                print_runs(&runs);
            }
        }
        JobsCommand::Run { name } => {
            let run = jobs.run_now(&name).await?;
            print_runs(std::slice::from_ref(&run));
            service.knowledge.flush().await?;
            return Ok(if run.status == RunStatus::Succeeded {
                0
            } else {
                1
            });
        }
        JobsCommand::Worker => {
            eprintln!("lariat job runner {} started", jobs.owner());
            tokio::select! {
                result = jobs.run() => result?,
                _ = tokio::signal::ctrl_c() => {}
            }
            service.knowledge.flush().await?;
        }
    }
    Ok(0)
}

/// The first line of standard input, or the variable when set.
pub(super) fn secret_input(variable: &str, what: &str) -> Result<String> {
    if let Ok(v) = std::env::var(variable) {
        return Ok(v);
    }
    if std::io::stdin().is_terminal() {
        eprint!("{what}: ");
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

pub(super) async fn admin(config: &Config, cmd: AdminCommand) -> Result<u8> {
    let service = open_service(config).await?;
    match cmd {
        AdminCommand::Create {
            email,
            reset_password,
        } => {
            let password = secret_input("LARIAT_ADMIN_PASSWORD", "password")?;
            let user = service
                .accounts
                .create_admin(&email, &password, reset_password)
                .await?;
            println!("{} is an admin (user id {})", user.email, user.id);
        }
        AdminCommand::AddUser { email, role } => {
            let role = base::principal::Role::parse(&role)?;
            let password = secret_input("LARIAT_ADMIN_PASSWORD", "password")?;
            let user = service.accounts.add_user(&email, &password, role).await?;
            println!(
                "{} can sign in (role {}, user id {})",
                user.email,
                user.role.as_str(),
                user.id
            );
        }
        AdminCommand::Erase { email } => {
            let user = service.accounts.user_by_email(&email).await?;
            let operator = service.accounts.local_operator().await?;
            service.privacy.erase_user(&operator, &user.id).await?;
            println!("{email} is erased (user id {})", user.id);
        }
        AdminCommand::Audit {
            event,
            user,
            limit,
            after,
            json,
        } => {
            let query = identity::audit::AuditQuery {
                event: event
                    .as_deref()
                    .map(identity::audit::AuditEvent::parse)
                    .transpose()?,
                user_id: match user {
                    Some(email) => Some(service.accounts.user_by_email(&email).await?.id),
                    None => None,
                },
                after,
                limit: Some(limit),
            };
            let operator = service.accounts.local_operator().await?;
            let page = service.audit.page(&operator, &query).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page)?);
            } else {
                for e in &page.entries {
                    println!(
                        "{}\t{}\tby {}\ton {}\tfrom {}\t{}",
                        crate::web::render::datetime(&e.at),
                        e.event.as_str(),
                        e.actor_id.as_deref().unwrap_or("-"),
                        e.subject_id.as_deref().unwrap_or("-"),
                        if e.address.is_empty() {
                            "-"
                        } else {
                            &e.address
                        },
                        e.detail
                    );
                }
                if let Some(next) = &page.next {
                    eprintln!("more: --after {next}");
                }
            }
        }
        AdminCommand::SetUser { email, role, plan } => {
            let user = service.accounts.user_by_email(&email).await?;
            let update = identity::accounts::UserUpdate {
                role: role
                    .as_deref()
                    .map(base::principal::Role::parse)
                    .transpose()?,
                plan,
                ..Default::default()
            };
            let user = service.accounts.set_user(None, &user.id, &update).await?;
            println!(
                "{}: role {}, plan {}",
                user.email,
                user.role.as_str(),
                user.plan
            );
        }
    }
    Ok(0)
}

pub(super) async fn collection(config: &Config, cmd: CollectionCommand) -> Result<u8> {
    match cmd {
        CollectionCommand::Ls { json } => {
            let k = open(config).await?;
            let list = k.collections().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for c in list {
                    println!(
                        "{}\t{}\t{} documents\t{} chunks\t{}",
                        c.name,
                        c.visibility.as_str(),
                        c.documents,
                        c.chunks,
                        c.model
                    );
                }
            }
        }
        CollectionCommand::Set {
            name,
            visibility,
            instructions_file,
            conversation_retention_days,
        } => {
            let name = CollectionName::parse(&name)?;
            let instructions = instructions_file
                .map(|path| {
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))
                })
                .transpose()?;
            let update = base::types::CollectionUpdate {
                visibility: visibility.as_deref().map(Visibility::parse).transpose()?,
                instructions,
                conversation_retention_days,
            };
            let service = open_service(config).await?;
            let operator = service.accounts.local_operator().await?;
            service
                .collections
                .update(&operator, &name, &update)
                .await?;
            println!("collection {name} updated");
        }
        CollectionCommand::Member { name, email, role } => {
            let name = CollectionName::parse(&name)?;
            let role = match role.as_str() {
                "none" => None,
                r => Some(MemberRole::parse(r)?),
            };
            let service = open_service(config).await?;
            let user = service.accounts.user_by_email(&email).await?;
            let operator = service.accounts.local_operator().await?;
            service
                .collections
                .set_member(&operator, &name, &user.id, role)
                .await?;
            println!(
                "{} is now {} of {name}",
                user.email,
                role.map_or("no member", |r| r.as_str())
            );
        }
    }
    Ok(0)
}
